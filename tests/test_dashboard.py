"""The dashboard in real headless Chromium (Debian's chromium + chromedriver, via Selenium)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from streamwarden.config.model import ApiSection, Config, StreamConfig
from tests.conftest import state_of, wait_for

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="chromium/chromedriver not installed (scripts/setup.sh)")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
TOKEN = "dashboard-token-0123456789abcdef"


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic",
                 "--autoplay-policy=no-user-gesture-required", "--window-size=1280,900",
                 f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE"]


def test_dashboard_end_to_end(browser, service_factory, camera_factory):
    camera = camera_factory(["/a", "/b"])
    svc = service_factory(Config(api=ApiSection(token=TOKEN), streams=[
        StreamConfig(id="front", uri=camera.url("/a")),
        StreamConfig(id="back", uri=camera.url("/b"), enable_recording=True)]))
    client = svc.client()
    client.headers["Authorization"] = f"Bearer {TOKEN}"
    wait_for(lambda: all(state_of(client, s)["health"]["state"] == "streaming"
                         for s in ("front", "back")), 20, message="streams up")

    browser.get(svc.base_url + "/")
    wait_for(lambda: browser.find_element("id", "login").is_displayed(), 10,
             message="the page asks for the token")
    browser.find_element("css selector", "#token-form input").send_keys(TOKEN)
    browser.find_element("css selector", "#token-form button").click()
    wait_for(lambda: len(browser.find_elements("css selector", ".card")) == 2, 10,
             message="both streams listed")
    wait_for(lambda: browser.execute_script(
        "return document.querySelector('#conn').textContent") == "live", 10,
        message="live over the WebSocket")

    # a live picture: a decoded, non-blank snapshot in each card within 10 s
    def pictures_shown() -> bool:
        return browser.execute_script("""
            return [...document.querySelectorAll('.card .snap')].every((img) => {
              if (!img.complete || img.naturalWidth === 0) return false;
              const c = document.createElement('canvas');
              c.width = 64; c.height = 36;
              const g = c.getContext('2d');
              g.drawImage(img, 0, 0, 64, 36);
              const d = g.getImageData(0, 0, 64, 36).data;
              let min = 255, max = 0;
              for (let i = 0; i < d.length; i += 4) {
                min = Math.min(min, d[i]); max = Math.max(max, d[i]);
              }
              return max - min > 40;
            });""")
    wait_for(pictures_shown, 10, interval=0.5, message="non-blank pictures")

    # start and stop recording from the page; the API agrees
    toggle = "#card-front .toggle-rec"
    browser.find_element("css selector", toggle).click()
    wait_for(lambda: state_of(client, "front")["recording"], 5, message="recording via UI")
    wait_for(lambda: browser.find_element("css selector", toggle).text == "Stop recording", 5,
             message="button shows the state")
    time.sleep(2.5)
    browser.find_element("css selector", toggle).click()
    wait_for(lambda: not state_of(client, "front")["recording"], 5, message="stopped via UI")

    # a recorded segment plays in <video>
    wait_for(lambda: any(r["status"] == "complete" for r in
                         client.get("/recordings", params={"stream_id": "front"}).json()), 10,
             message="a finished segment")
    browser.find_element("css selector", "#card-front .show-rec").click()
    wait_for(lambda: browser.find_elements("css selector", ".rec-row .play"), 5,
             message="recordings listed")
    rows = browser.find_elements("css selector", ".rec-row")
    complete = next(r for r in rows if "complete" in r.text)
    complete.find_element("css selector", ".play").click()
    wait_for(lambda: browser.execute_script(
        "const v = document.querySelector('#player');"
        "return v.readyState >= 2 && v.currentTime > 0.5 && v.videoWidth === 640;"), 10,
        message="the segment plays")

    # errors from the API are shown
    form = browser.find_element("id", "add-form")
    form.find_element("name", "id").send_keys("front")
    form.find_element("name", "uri").send_keys("rtsp://127.0.0.1:9/x")
    form.find_element("css selector", "button").click()
    wait_for(lambda: "duplicate_id" in browser.find_element("id", "error").text, 5,
             message="API error shown")

    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))
    errors = [e for e in console_errors(browser) if "/streams" not in e or "409" not in e]
    assert errors == [], errors


def test_tiles_play_live_video_and_fall_back_to_snapshots(browser, service_factory,
                                                          camera_factory):
    camera = camera_factory(["/a"])
    hevc = camera_factory(["/b"], ["--codec", "h265"])
    svc = service_factory(Config(api=ApiSection(token=TOKEN), streams=[
        StreamConfig(id="avc", uri=camera.url("/a")),
        StreamConfig(id="hevc", uri=hevc.url("/b"))]))
    client = svc.client()
    client.headers["Authorization"] = f"Bearer {TOKEN}"
    wait_for(lambda: all(state_of(client, s)["health"]["state"] == "streaming"
                         for s in ("avc", "hevc")), 20, message="streams up")

    browser.get(svc.base_url + "/")
    browser.execute_script("localStorage.setItem('streamwarden-token', arguments[0]);", TOKEN)
    browser.get(svc.base_url + "/")
    wait_for(lambda: browser.execute_script(
        "return !!document.querySelector('#card-avc.is-live')"), 15,
        message="the H.264 tile goes live")
    playing = """
        const v = document.querySelector('#card-avc .live');
        return [v.videoWidth, v.currentTime, v.readyState];"""
    width, first, _ = browser.execute_script(playing)
    assert width == 640
    wait_for(lambda: browser.execute_script(playing)[1] > first + 1, 10,
             message="live video time advances")
    assert state_of(client, "avc")["health"]["live_viewers"] == 1

    # the same player plays on after the camera restarts (one forward timeline)
    camera.kill()
    wait_for(lambda: state_of(client, "avc")["health"]["state"] == "retrying", 10,
             message="camera down")
    camera.start()
    wait_for(lambda: state_of(client, "avc")["health"]["state"] == "streaming", 15,
             message="camera back")
    resumed = browser.execute_script(playing)[1]
    wait_for(lambda: browser.execute_script(playing)[1] > resumed + 1, 10,
             message="live video plays again after the restart")
    assert state_of(client, "avc")["health"]["live_viewers"] == 1  # the same viewer

    # H.265 is not for browsers' MSE: that tile shows MJPEG from the server's decoder instead
    assert not browser.execute_script("return !!document.querySelector('#card-hevc.is-live')")
    wait_for(lambda: browser.execute_script(
        "const i = document.querySelector('#card-hevc.is-mjpeg .snap');"
        "return !!i && i.naturalWidth === 640;"), 10, message="H.265 tile plays MJPEG")
    assert state_of(client, "hevc")["health"]["live_viewers"] == 0
    wait_for(lambda: any(c["kind"] == "pixels"
                         for c in state_of(client, "hevc")["statistics"]["consumers"]), 10,
             message="the MJPEG tile is served by the stream's decoder")

    # leaving the page ends the live view on the server
    browser.get("about:blank")
    wait_for(lambda: not any(c["kind"] == "live" for c in
                             state_of(client, "avc")["statistics"]["consumers"]), 10,
             message="mux detached after the page left")
    wait_for(lambda: not any(c["kind"] == "pixels" for c in
                             state_of(client, "hevc")["statistics"]["consumers"]), 10,
             message="MJPEG decoder released after the page left")
    ARTIFACTS.mkdir(exist_ok=True)
    assert console_errors(browser) == []


def test_detection_toggle_and_latest_detections(browser, service_factory, camera_factory,
                                                tmp_path):
    from streamwarden.config.model import AppSection
    from tests.test_inference import PERSON_CAMERA

    camera = camera_factory(["/cam"], PERSON_CAMERA)
    svc = service_factory(Config(app=AppSection(database=str(tmp_path / "db.sqlite")),
                                 api=ApiSection(allow_unauthenticated=True),
                                 streams=[StreamConfig(id="door", uri=camera.url())]))
    client = svc.client()
    wait_for(lambda: state_of(client, "door")["health"]["state"] == "streaming", 20,
             message="stream up")
    browser.get(svc.base_url + "/")
    button = wait_for(lambda: browser.find_elements("css selector", "#card-door .toggle-det"),
                      10, message="the card")[0]
    assert button.text == "Detect objects"
    button.click()
    wait_for(lambda: state_of(client, "door")["enable_inference"], 10,
             message="the click turned detection on through the API")

    def detection_pictures() -> int:
        return browser.execute_script("""
            return [...document.querySelectorAll('#det-list .detection img')]
              .filter((img) => img.complete && img.naturalWidth > 0).length""")

    wait_for(detection_pictures, 30, message="a detection with its picture on the page")
    wait_for(lambda: "detecting" in browser.find_element(
        "css selector", "#card-door .stats").text, 10, message="the card shows detection")
    caption = browser.find_element("css selector", "#det-list figcaption").text
    assert caption.startswith("door · person")
    assert browser.find_element("css selector", "#card-door .toggle-det").text == \
        "Stop detecting"
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-detections.png"))
    assert console_errors(browser) == []


def test_login_hides_what_a_role_cannot_do(browser, service_factory, camera_factory, tmp_path):
    from tests.test_users import PASSWORD, users_config
    from tests.test_users import TOKEN as ADMIN_TOKEN

    camera = camera_factory(["/a", "/b"])
    svc = service_factory(users_config(tmp_path, [
        StreamConfig(id="front", uri=camera.url("/a")),
        StreamConfig(id="back", uri=camera.url("/b"))]))
    client = svc.client()
    client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"

    def shown(selector: str) -> bool:
        return any(e.is_displayed() for e in browser.find_elements("css selector", selector))

    def sign_in(name: str, password: str = PASSWORD) -> None:
        wait_for(lambda: shown("#login-form"), 10, message="the login form")
        form = browser.find_element("id", "login-form")
        form.find_element("name", "username").send_keys(name)
        form.find_element("name", "password").send_keys(password)
        form.find_element("css selector", "button").click()

    browser.get(svc.base_url + "/")
    assert not shown("#add-form")  # nothing to do before signing in
    sign_in("alice", "not her password")
    wait_for(lambda: browser.find_element("id", "login-error").text ==
             "wrong user name or password", 10, message="the refusal shown")

    # a viewer limited to one stream: that stream only, and no control that changes anything
    browser.find_element("id", "login-form").find_element("name", "username").clear()
    sign_in("alice")
    wait_for(lambda: shown("#card-front"), 10, message="alice's stream")
    assert browser.find_element("id", "who").text == "alice (viewer)"
    assert not browser.find_elements("css selector", "#card-back")
    assert shown("#card-front .show-rec")
    for control in ("#add-form", "#card-front .toggle-rec", "#card-front .toggle-det",
                    "#card-front .remove"):
        assert not shown(control), control
    session = browser.execute_script("return localStorage.getItem('streamwarden-token')")
    assert client.get("/auth/me", headers={"Authorization": f"Bearer {session}"}).json()[
        "name"] == "alice"

    # logging out ends the session on the server too
    browser.find_element("id", "logout").click()
    wait_for(lambda: shown("#login-form"), 10, message="back to the login page")
    assert client.get("/streams", headers={"Authorization": f"Bearer {session}"}
                      ).status_code == 401

    # an operator records, but adds and removes nothing
    sign_in("olga")
    wait_for(lambda: shown("#card-front") and shown("#card-back"), 10, message="all streams")
    assert shown("#card-front .toggle-rec") and shown("#card-front .toggle-det")
    assert not shown("#add-form") and not shown("#card-front .remove")
    browser.find_element("css selector", "#card-front .toggle-rec").click()
    wait_for(lambda: state_of(client, "front")["recording"], 5, message="recording via UI")
    client.delete("/streams/front/record")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-operator.png"))
    assert [e for e in console_errors(browser) if "/auth/login" not in e] == []
