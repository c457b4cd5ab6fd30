// In a cluster (`owner` is set on streams), each card names the node that runs the camera.
// Outside a cluster `owner` is null and nothing is shown. Loaded before app.js, which calls
// Cluster.show from renderCard.
const Cluster = {
  show(card, stream) {
    let badge = card.querySelector(".owner");
    if (!stream.owner && !("owner" in stream && badge)) return;
    if (!badge) {
      badge = document.createElement("span");
      badge.className = "badge owner";
      card.querySelector(".meta").prepend(badge);
    }
    badge.textContent = stream.owner ? `on ${stream.owner}` : "no owner";
    badge.title = stream.owner ? `node ${stream.owner} runs this camera` :
      "no live node runs this camera right now";
    badge.classList.toggle("owner-none", !stream.owner);
  },
};
