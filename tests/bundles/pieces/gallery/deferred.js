// Deferred: runs once the whole page is parsed, so it sees the canvas.
window.order.push("deferred:" + (document.getElementById("c") ? "canvas" : "no-canvas"));
