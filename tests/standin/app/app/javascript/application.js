// Mastodon STAND-IN front-end placeholder (not Mastodon's web UI).
document.addEventListener('DOMContentLoaded', () => {
  document.body.dataset.standin = 'true';
});
