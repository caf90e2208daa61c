# frozen_string_literal: true

# Mastodon STAND-IN web application (Rack). Not Mastodon.
require File.expand_path('config/environment', __dir__)
require 'standin/web'

run Standin::Web.new
