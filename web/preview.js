// The link-preview card under a message. The server fetched the page (never
// the browser): the card shows its title and description as text, and its
// image only from file-srv, so opening the room loads nothing from the
// linked site. The room page's Content-Security-Policy (sent by aux-srv)
// allows images from file-srv's origin and the page's own only.

import { el } from './app.js';

/** True when `url` is an http(s) URL on file-srv's origin. */
export function isFilesUrl(url, filesUrl) {
  try {
    const u = new URL(url);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === new URL(filesUrl).origin;
  } catch {
    return false;
  }
}

/** Only http(s) links become links. */
function safeLink(url) {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u : null;
  } catch {
    return null;
  }
}

/** The card for preview `p` ({url, title, description?, image?}), or null. */
export function previewCard(p, filesUrl) {
  const link = p && safeLink(p.url);
  if (!link || !p.title) return null;
  const image = p.image && filesUrl && isFilesUrl(p.image, filesUrl)
    ? el('img', { class: 'preview-image', src: p.image, alt: '', loading: 'lazy', decoding: 'async', referrerpolicy: 'no-referrer' })
    : null;
  return el('div', { class: 'preview', role: 'group', 'aria-label': `Link preview: ${p.title}` },
    image,
    el('div', { class: 'preview-body' },
      el('a', { class: 'preview-title', href: link.href, target: '_blank', rel: 'noopener noreferrer nofollow' }, p.title),
      p.description ? el('p', { class: 'preview-description' }, p.description) : null,
      el('p', { class: 'preview-host muted' }, link.host)));
}
