"""The browser chat's stylesheet and its one piece of JavaScript (footnotes and copy).

Nothing here loads anything from outside the app: system fonts only, no images, no CDN.
"""

from __future__ import annotations

CSS = """
.qa-chat { display: flex; flex-direction: column; gap: 14px; padding: 4px 2px; }
.qa-chat-empty { color: var(--body-text-color-subdued); padding: 24px 8px; }
.qa-q { display: flex; justify-content: flex-end; }
.qa-q .qa-bubble { background: var(--color-accent-soft); border-radius: 12px;
  padding: 8px 12px; max-width: 85%; white-space: pre-wrap; overflow-wrap: anywhere; }
.qa-a { border: 1px solid var(--border-color-primary); border-radius: 12px;
  padding: 10px 12px; margin-top: 6px; max-width: 95%; }
.qa-a .qa-text { white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.5; }
.qa-a.qa-refused { border-style: dashed; background: var(--background-fill-secondary); }
.qa-a.qa-refused .qa-text { font-style: italic; }
.qa-a.qa-error { border-color: #d33; background: rgba(221, 51, 51, 0.07); }
.qa-a.qa-stopped { opacity: 0.85; }
.qa-badge { font-size: 0.78em; font-weight: 600; text-transform: uppercase;
  letter-spacing: 0.04em; color: var(--body-text-color-subdued); margin-bottom: 4px; }
.qa-a.qa-error .qa-badge { color: #c22; }
.qa-cite { font-size: 0.8em; vertical-align: super; font-weight: 600; text-decoration: none;
  padding: 0 2px; border-radius: 4px; cursor: pointer; color: var(--color-accent); }
.qa-cite:hover, .qa-cite:focus { background: var(--color-accent-soft); }
.qa-caret { display: inline-block; width: 0.5em; height: 1em; margin-left: 2px;
  vertical-align: text-bottom; background: var(--body-text-color-subdued);
  animation: qa-blink 1s steps(1) infinite; }
@keyframes qa-blink { 50% { opacity: 0; } }
.qa-meta { margin-top: 6px; font-size: 0.82em; color: var(--body-text-color-subdued); }
.qa-copy { border: 1px solid var(--border-color-primary) !important; border-radius: 6px;
  padding: 1px 8px !important; background: var(--background-fill-primary); cursor: pointer;
  font-size: 1em !important; font-weight: normal !important; line-height: 1.4 !important; }
.qa-sources .qa-panel-title { font-weight: 600; margin-bottom: 6px; }
.qa-src-turn { margin-bottom: 12px; }
.qa-src-q { font-size: 0.85em; color: var(--body-text-color-subdued); margin-bottom: 4px; }
.qa-src { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: 6px 10px; margin-bottom: 6px; }
.qa-src summary { cursor: pointer; }
.qa-src-name { font-family: var(--font-mono); font-size: 0.88em; }
.qa-src-page { font-size: 0.85em; color: var(--body-text-color-subdued); }
.qa-passage { margin-top: 6px; white-space: pre-wrap; overflow-wrap: anywhere;
  font-size: 0.92em; line-height: 1.5; max-height: 22em; overflow-y: auto; }
.qa-hl { background: #ffe066; color: #111; padding: 0 1px; border-radius: 2px; }
.qa-src.qa-flash { animation: qa-flash 1.6s ease-out; }
@keyframes qa-flash { 0% { box-shadow: 0 0 0 3px var(--color-accent); } 100% { box-shadow: none; } }
.qa-src-none, .qa-empty-list { color: var(--body-text-color-subdued); }
.qa-docs table, .qa-report table { width: 100%; border-collapse: collapse; font-size: 0.92em; }
.qa-docs th, .qa-docs td, .qa-report th, .qa-report td { text-align: left; padding: 4px 8px;
  border-bottom: 1px solid var(--border-color-primary); overflow-wrap: anywhere; }
.qa-num { text-align: right !important; }
.qa-r-skipped .qa-outcome, .qa-r-refused .qa-outcome, .qa-r-failed .qa-outcome { color: #c22; }
.qa-r-indexed .qa-outcome, .qa-r-updated .qa-outcome { color: #2a7; }
.qa-report-summary, .qa-docs-total { margin: 6px 0; font-size: 0.9em; }
.qa-formats { font-size: 0.9em; margin: 2px 0 6px; }
.qa-formats-head { font-weight: 600; margin-bottom: 2px; }
.qa-formats table { border-collapse: collapse; border: none !important; width: auto; }
.qa-formats tr, .qa-formats th, .qa-formats td { border: none !important;
  background: none !important; }
.qa-formats th, .qa-formats td { text-align: left; padding: 1px 16px 1px 0 !important;
  vertical-align: baseline; }
.qa-formats th { font-weight: 600; white-space: nowrap; }
.qa-formats code { font-size: 0.92em; }
.qa-formats-note { margin-top: 4px; color: var(--body-text-color-subdued); }
"""

# Runs once when the transcript component mounts (`element` is its root): clicks on a
# footnote open and highlight the cited passage in the sources panel; "Copy" copies.
CHAT_JS = """
function qaCopy(text, done) {
  const fallback = () => {
    const area = document.createElement('textarea');
    area.value = text; area.setAttribute('readonly', '');
    area.style.position = 'fixed'; area.style.opacity = '0';
    document.body.appendChild(area); area.select();
    try { document.execCommand('copy'); } catch (e) {}
    document.body.removeChild(area); done();
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, fallback);
  } else { fallback(); }
}
element.addEventListener('click', (event) => {
  const cite = event.target.closest('.qa-cite');
  if (cite) {
    event.preventDefault();
    const target = document.getElementById(cite.dataset.target);
    if (target) {
      target.open = true;
      target.scrollIntoView({block: 'nearest', behavior: 'smooth'});
      target.classList.remove('qa-flash'); void target.offsetWidth;
      target.classList.add('qa-flash');
    }
    return;
  }
  const copy = event.target.closest('.qa-copy');
  if (copy) {
    event.preventDefault();
    qaCopy(copy.dataset.copy || '', () => {
      copy.textContent = 'Copied';
      setTimeout(() => { copy.textContent = 'Copy'; }, 1500);
    });
  }
});
"""
