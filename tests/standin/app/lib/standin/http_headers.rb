# frozen_string_literal: true

require 'securerandom'

module Standin
  # The caching and security headers the stand-in sends, one kind of response at a time, with the
  # Mastodon source each value was read from (the stand-in's README has the same list). The values
  # are what Rails renders for Mastodon's settings; the code that produces them is the stand-in's.
  module HttpHeaders
    # config/environments/production.rb, `config.action_dispatch.default_headers`: Rails adds these
    # to every response it renders. Mastodon's `Server: Mastodon` is left out on purpose: this is
    # not Mastodon.
    SECURITY = {
      'x-frame-options' => 'DENY',
      'x-content-type-options' => 'nosniff',
      'x-xss-protection' => '0',
      'referrer-policy' => 'same-origin',
    }.freeze

    # app/controllers/application_controller.rb, `set_cache_control_defaults`: every controller
    # action starts as private and not storable (API answers, admin API, uploads, errors).
    PRIVATE = 'private, no-store'

    # app/controllers/concerns/api/caching_concern.rb, `cache_even_if_authenticated!` (5 minutes,
    # stale-while-revalidate 30 s, stale-if-error 1 day): /api/v1/instance, /api/v2/instance,
    # /api/v1/instance/rules.
    PUBLIC_INSTANCE = 'max-age=300, public, stale-while-revalidate=30, stale-if-error=86400'

    # app/controllers/{home,about,privacy}_controller.rb: `expires_in 15.seconds, public: true,
    # stale_while_revalidate: 30.seconds, stale_if_error: 1.day` unless someone is signed in (the
    # stand-in has no sessions, so always).
    PUBLIC_PAGE = 'max-age=15, public, stale-while-revalidate=30, stale-if-error=86400'

    # app/controllers/health_controller.rb inherits ActionController::Base, not
    # ApplicationController, so nothing sets Cache-Control; Rack::ETag in Rails' middleware
    # stack then adds its default for a 200 with a body.
    HEALTH = 'max-age=0, private, must-revalidate'

    # app/controllers/concerns/api/content_security_policy.rb: API answers get the directives
    # without a fallback, all set to 'none'.
    API_CSP = "default-src 'none'; frame-ancestors 'none'; form-action 'none'"

    # app/controllers/api/base_controller.rb `vary_by 'Authorization'`; the instance controllers
    # reset it (`vary_by ''`); app/controllers/concerns/web_app_controller_concern.rb for pages.
    API_VARY = 'Authorization'
    PAGE_VARY = 'Accept, Accept-Language, Cookie'

    module_function

    def web_domain
      ENV.fetch('WEB_DOMAIN', nil).presence || ENV.fetch('LOCAL_DOMAIN', 'localhost')
    end

    # config/initializers/content_security_policy.rb (production branch): the assets host is
    # CDN_HOST or https://WEB_DOMAIN, media comes from the same host (no object storage here),
    # the streaming API from STREAMING_API_BASE_URL or wss://WEB_DOMAIN, and style-src carries a
    # per-request nonce.
    def web_csp(nonce = SecureRandom.base64(16))
      assets = ENV.fetch('CDN_HOST', nil).presence || "https://#{web_domain}"
      streaming = ENV.fetch('STREAMING_API_BASE_URL', nil).presence || "wss://#{web_domain}"
      [
        ['base-uri', "'none'"],
        ['default-src', "'none'"],
        ['frame-ancestors', "'none'"],
        ['font-src', "'self'", assets],
        ['img-src', "'self'", 'data:', 'blob:', assets],
        ['style-src', "'self'", assets, "'nonce-#{nonce}'"],
        ['media-src', "'self'", 'data:', assets],
        ['manifest-src', "'self'", assets],
        ['form-action', "'self'"],
        ['child-src', "'self'", 'blob:', assets],
        ['worker-src', "'self'", 'blob:', assets],
        ['connect-src', "'self'", 'data:', 'blob:', assets, streaming],
        ['script-src', "'self'", assets, "'wasm-unsafe-eval'"],
        ['frame-src', "'self'", 'https:'],
      ].map { |directive| directive.join(' ') }.join('; ')
    end

    # An API controller's answer (JSON, errors included).
    def api(cache = PRIVATE, vary: API_VARY)
      headers = SECURITY.merge('cache-control' => cache, 'content-security-policy' => API_CSP)
      headers['vary'] = vary if vary
      headers
    end

    # A web page (HTML from a controller that includes WebAppControllerConcern).
    def page(cache = PUBLIC_PAGE)
      SECURITY.merge('cache-control' => cache, 'content-security-policy' => web_csp, 'vary' => PAGE_VARY)
    end

    # An HTML error page rendered by ApplicationController (an unknown route).
    def error
      SECURITY.merge('cache-control' => PRIVATE, 'content-security-policy' => web_csp)
    end

    # /health: Rails' CSP middleware gives every response without a policy the application-wide one.
    def health
      SECURITY.merge('cache-control' => HEALTH, 'content-security-policy' => web_csp)
    end
  end
end
