# frozen_string_literal: true

# Mastodon STAND-IN web application (Rack). Not Mastodon.
require File.expand_path('config/environment', __dir__)
require 'standin/web'

# Like Rails' middleware stack: HEAD is answered as GET without the body.
use Rack::Head
run Standin::Web.new
