// One tooltip for the graph and the diagrams, filled with text nodes only.

function tip() {
  return document.getElementById('tooltip');
}

/** Shows `lines` (strings) next to the pointer of `event`. */
export function showTooltip(event, lines) {
  const el = tip();
  if (!el) return;
  el.replaceChildren();
  for (const line of lines) {
    const div = document.createElement('div');
    div.textContent = line;
    el.appendChild(div);
  }
  el.hidden = false;
  if (event) {
    const x = Math.min(event.clientX + 14, window.innerWidth - el.offsetWidth - 8);
    const y = Math.min(event.clientY + 14, window.innerHeight - el.offsetHeight - 8);
    el.style.left = `${Math.max(0, x)}px`;
    el.style.top = `${Math.max(0, y)}px`;
  }
}

export function hideTooltip() {
  const el = tip();
  if (el) el.hidden = true;
}
