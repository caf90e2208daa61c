# frozen_string_literal: true

# Mastodon STAND-IN, breaking tag only (build-repo.sh --with-breaking-tag): this release's web
# process never starts, so an upgrade to it fails after its pre-deployment migrations ran.
raise 'Stand-in breaking release: puma refuses to start on purpose'
