// Signing in and what the signed-in account may do: the login page (a user's name and
// password, or the API token), who is signed in, log out, and hiding the controls the
// account's role does not allow. The API refuses those anyway (403); hiding them keeps the
// page honest. app.js calls Auth.bind once, Auth.showLogin when the API wants credentials,
// and Auth.apply with its api() function once it has them.
"use strict";

const Auth = {
  // onToken(token) is called with a session token (after a login) or the API token.
  bind(onToken) {
    const $ = (sel) => document.querySelector(sel);
    $("#login-form").onsubmit = async (event) => {
      event.preventDefault();
      const form = event.target;
      const response = await fetch("/auth/login", { method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username: form.username.value, password: form.password.value }) });
      const payload = await response.json();
      if (!response.ok) {
        form.password.value = "";
        $("#login-error").textContent = payload.detail || "cannot sign in";
        return;
      }
      form.reset();
      $("#login-error").textContent = "";
      onToken(payload.token);
    };
    $("#token-form").onsubmit = (event) => {
      event.preventDefault();
      onToken(event.target.token.value);
      event.target.reset();
    };
  },

  // status: GET /auth/status. Offer the user form only where the service has users.
  showLogin(status) {
    document.querySelector("#login").hidden = false;
    document.querySelector("#login-form").hidden = !status.login;
  },

  // Ask who we are, then show only what this account may do (body classes: can-<action>).
  async apply(api, onLogout) {
    const me = await api("GET", "/auth/me");
    const body = document.body;
    for (const name of [...body.classList]) if (name.startsWith("can-")) body.classList.remove(name);
    me.actions.forEach((action) => body.classList.add(`can-${action}`));
    body.dataset.role = me.role;
    const who = document.querySelector("#who");
    const signedIn = me.name !== "anonymous";
    who.hidden = !signedIn;
    who.textContent = signedIn ? `${me.name} (${me.role})` : "";
    const logout = document.querySelector("#logout");
    logout.hidden = !signedIn;
    logout.onclick = async () => {
      try { await api("POST", "/auth/logout"); } catch (err) { /* signed out anyway */ }
      onLogout();
    };
    return me;
  },
};
