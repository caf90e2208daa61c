# frozen_string_literal: true

# Mastodon STAND-IN web application (Rack). Not Mastodon.
require File.expand_path('config/environment', __dir__)
require 'standin/production_middleware'
require 'standin/web'

# Mastodon's production stack, in Rails' order: host authorization (config/initializers/
# 1_hosts.rb), then the HTTPS redirect (config.force_ssl), then HEAD answered as GET without
# the body (Rack::Head).
use Standin::HostAuthorization
use Standin::ForceSsl
use Rack::Head
run Standin::Web.new
