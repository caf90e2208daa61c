# frozen_string_literal: true

require 'erb'
require 'rack'

module Standin
  # The two checks Mastodon's Rails stack makes in production before any controller runs, in
  # Rails' order (ActionDispatch::HostAuthorization first, then ActionDispatch::SSL):
  #
  # - config/initializers/1_hosts.rb: `config.hosts` holds LOCAL_DOMAIN (default
  #   "localhost:PORT"), WEB_DOMAIN (default LOCAL_DOMAIN) and every ALTERNATE_DOMAINS entry;
  #   `config.host_authorization` excludes exactly the path /health and answers any other
  #   request for another host with 403 and an HTML page (Mastodon renders errors/blocked_host).
  # - config/environments/production.rb: `config.force_ssl = true` with
  #   `ssl_options.redirect.exclude` for paths starting with /health and .onion/.i2p hosts. A
  #   request counts as HTTPS when Rack says so, which it does behind nginx through
  #   `X-Forwarded-Proto: https`.
  #
  # The code is the stand-in's; the behaviour is what those settings make Rails do.
  class HostAuthorization
    HOST_WITH_PORT = /\A(?<host>[a-z0-9.-]+|\[[a-f0-9:.]+\])(?::\d+)?\z/i

    def self.allowed_hosts(env = ENV)
      port = env.fetch('PORT', 3000)
      local = env['LOCAL_DOMAIN'].presence || "localhost:#{port}"
      web = env['WEB_DOMAIN'].presence || local
      alternates = env.fetch('ALTERNATE_DOMAINS', '').split(/\s*,\s*/).reject(&:empty?)
      [local, web, *alternates].uniq
    end

    def initialize(app, hosts = self.class.allowed_hosts)
      @app = app
      @hosts = hosts.map(&:downcase)
    end

    def call(env)
      request = Rack::Request.new(env)
      return @app.call(env) if request.path_info == '/health'

      origin = env['HTTP_HOST'].to_s
      forwarded = env['HTTP_X_FORWARDED_HOST'].to_s.split(/,\s?/).last.to_s
      return @app.call(env) if allows?(origin) && (forwarded.empty? || allows?(forwarded))

      blocked(forwarded.empty? ? origin : forwarded)
    end

    private

    # An entry matches the host alone or the host with any port (an entry with a port, such as
    # the default "localhost:3000", matches exactly that).
    def allows?(value)
      value = value.downcase
      return true if @hosts.include?(value)

      match = HOST_WITH_PORT.match(value)
      !match.nil? && @hosts.include?(match[:host])
    end

    def blocked(host)
      name = ERB::Util.html_escape(host.sub(/:\d+\z/, ''))
      body = <<~HTML
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>Blocked host</title></head>
        <body data-standin="not-mastodon"><main><h1>Blocked host: #{name}</h1>
        <p>This server does not answer for this host name (Mastodon stand-in).</p></main></body></html>
      HTML
      [403, { 'content-type' => 'text/html; charset=utf-8', 'content-length' => body.bytesize.to_s }, [body]]
    end
  end

  # config.force_ssl through the TLS proxy: plain HTTP is redirected to https:// on the same
  # host and path, 301 for GET/HEAD and 308 for other methods (Rails 7's default for
  # `ssl_default_redirect_status`, which Mastodon's load_defaults sets), with an empty body.
  class ForceSsl
    def initialize(app)
      @app = app
    end

    def call(env)
      request = Rack::Request.new(env)
      return @app.call(env) if request.ssl? || excluded?(request)

      [redirect_status(request), { 'content-type' => 'text/html', 'location' => https_location(request) }, []]
    end

    private

    def excluded?(request)
      host = request.host.to_s
      request.path_info.start_with?('/health') || host.end_with?('.onion') || host.end_with?('.i2p')
    end

    def redirect_status(request)
      %w(GET HEAD).include?(request.request_method) ? 301 : 308
    end

    # ActionDispatch::Request#port: the port named in X-Forwarded-Host or Host, else the
    # scheme's standard one (80: this is plain HTTP).
    def https_location(request)
      raw = request.get_header('HTTP_X_FORWARDED_HOST').to_s.split(/,\s?/).last.presence ||
            request.get_header('HTTP_HOST').to_s
      port = raw[/:(\d+)\z/, 1]&.to_i || 80
      location = +"https://#{request.host}"
      location << ":#{port}" unless [80, 443].include?(port)
      location << request.fullpath
    end
  end
end
