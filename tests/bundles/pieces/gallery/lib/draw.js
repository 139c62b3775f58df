export function draw(canvas, { colors, square, sprite, text, word }) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.imageSmoothingEnabled = false;
  g.fillStyle = "#0b132b"; g.fillRect(0, 0, w, h);
  for (let i = 0; i < 8; i++) square(g, 10 + i * 28, 10, 24, i);
  g.drawImage(sprite, w - 74, 10, 64, 64);
  g.fillStyle = colors[3];
  g.font = '20px "Piece"';
  g.fillText(text, 10, 70);
  g.fillText(word.length > 10 ? "</script> kept" : "?", 10, 96);
}
