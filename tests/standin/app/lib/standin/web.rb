# frozen_string_literal: true

require 'json'
require 'rack'
require 'erb'
require 'standin/http_headers'
require 'standin/statuses_api'
require 'standin/web_session'

module Standin
  # The stand-in's HTTP interface: health, instance info, the landing, about and privacy pages,
  # media upload, the public conversation (StatusesApi), signing in with a browser and the admin
  # reports page (WebSession), and the admin domain block/allow API.
  # JSON shapes follow Mastodon's; caching and
  # security headers come from Standin::HttpHeaders.
  class Web
    include StatusesApi
    include WebSession

    class HttpError < StandardError
      attr_reader :status

      def initialize(status, message)
        super(message)
        @status = status
      end
    end

    ROUTES = [
      ['GET', %r{\A/\z}, :landing],
      ['GET', %r{\A/health\z}, :health],
      ['GET', %r{\A/api/v1/instance\z}, :instance_v1],
      ['GET', %r{\A/api/v2/instance\z}, :instance_v2],
      ['GET', %r{\A/api/v1/instance/rules\z}, :instance_rules],
      ['GET', %r{\A/about\z}, :about],
      ['GET', %r{\A/privacy-policy\z}, :privacy_policy],
      ['POST', %r{\A/api/v[12]/media\z}, :media_create],
      ['POST', %r{\A/api/v1/standin/jobs\z}, :job_create],
      ['GET', %r{\A/api/v1/admin/domain_blocks\z}, :domain_blocks_index],
      ['POST', %r{\A/api/v1/admin/domain_blocks\z}, :domain_blocks_create],
      ['GET', %r{\A/api/v1/admin/domain_blocks/(\d+)\z}, :domain_blocks_show],
      ['PUT', %r{\A/api/v1/admin/domain_blocks/(\d+)\z}, :domain_blocks_update],
      ['DELETE', %r{\A/api/v1/admin/domain_blocks/(\d+)\z}, :domain_blocks_destroy],
      ['GET', %r{\A/api/v1/admin/domain_allows\z}, :domain_allows_index],
      ['POST', %r{\A/api/v1/admin/domain_allows\z}, :domain_allows_create],
      ['GET', %r{\A/api/v1/admin/domain_allows/(\d+)\z}, :domain_allows_show],
      ['DELETE', %r{\A/api/v1/admin/domain_allows/(\d+)\z}, :domain_allows_destroy],
      *StatusesApi::ROUTES,
      *WebSession::ROUTES,
    ].freeze

    BLOCK_FIELDS = %w(domain severity reject_media reject_reports private_comment public_comment obfuscate).freeze

    # app/models/media_attachment.rb: IMAGE_MIME_TYPES, VIDEO_MIME_TYPES and AUDIO_MIME_TYPES,
    # the content types its attachment validation admits, and the `type` each one gets.
    MEDIA_TYPES = {
      'image' => %w(image/jpeg image/png image/gif image/heic image/heif image/webp image/avif),
      'video' => %w(video/webm video/mp4 video/quicktime video/ogg),
      'audio' => %w(audio/wave audio/wav audio/x-wav audio/x-pn-wave audio/vnd.wave audio/ogg
                    audio/vorbis audio/mpeg audio/mp3 audio/webm audio/flac audio/aac audio/m4a
                    audio/x-m4a audio/mp4 audio/3gpp video/x-ms-asf),
    }.freeze

    def call(env)
      request = Rack::Request.new(env)
      # The health check asks the database itself, so it runs outside the request's connection.
      return health(request) if request.path_info == '/health' && %w(GET HEAD).include?(request.request_method)

      ActiveRecord::Base.connection_pool.with_connection { dispatch(request) }
    rescue HttpError => e
      json(e.status, error: e.message)
    rescue ActiveRecord::RecordNotFound
      json(404, error: 'Record not found')
    rescue ActiveRecord::RecordInvalid => e
      json(422, error: "Validation failed: #{e.record.errors.full_messages.join(', ')}")
    end

    private

    def dispatch(request)
      # HEAD is answered like GET; Rack::Head (config.ru) drops the body.
      method = request.request_method == 'HEAD' ? 'GET' : request.request_method
      ROUTES.each do |verb, pattern, handler|
        next unless method == verb || (verb == 'PUT' && method == 'PATCH')

        match = pattern.match(request.path_info)
        return send(handler, request, *match.captures) if match
      end
      not_found(request)
    end

    # Mastodon answers an unknown route with its HTML error page (ApplicationController, so
    # private, no-store); the stand-in keeps a JSON answer for unknown API paths.
    def not_found(request)
      return json(404, error: 'Record not found') if request.path_info.start_with?('/api/')

      html(404, 'The page you are looking for is not here (Mastodon stand-in)',
           "<h1>The page you are looking for is not here.</h1><p>Mastodon stand-in.</p>",
           HttpHeaders.error)
    end

    def json(status, body, headers = HttpHeaders.api)
      [status, headers.merge('content-type' => 'application/json; charset=utf-8'), [JSON.generate(body)]]
    end

    def html(status, title, body_html, headers = HttpHeaders.page)
      page = <<~HTML
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>#{ERB::Util.html_escape(title)}</title></head>
        <body data-standin="not-mastodon"><main>#{body_html}</main></body></html>
      HTML
      [status, headers.merge('content-type' => 'text/html; charset=utf-8'), [page]]
    end

    # Instance information is public for five minutes, like Mastodon's (no Vary).
    def public_json(body)
      json(200, body, HttpHeaders.api(HttpHeaders::PUBLIC_INSTANCE, vary: nil))
    end

    def params(request)
      if request.media_type == 'application/json'
        body = request.body.read
        body.empty? ? {} : JSON.parse(body)
      else
        request.params
      end
    rescue JSON::ParserError
      raise HttpError.new(400, 'Invalid JSON')
    end

    def boolean(value)
      [true, 'true', '1', 1, 'on'].include?(value)
    end

    # --- public ------------------------------------------------------------------------

    # 200 `OK` only while PostgreSQL answers a query and Redis answers PING (what Mastodon's
    # health check looks at: the database and the Redis-backed cache), else 500 with
    # `health_check failed`, the health_check gem's answer when a check fails.
    def health(_request)
      if database_reachable? && redis_reachable?
        [200, HttpHeaders.health.merge('content-type' => 'text/plain; charset=utf-8'), ['OK']]
      else
        [500, HttpHeaders.error.merge('content-type' => 'text/plain; charset=utf-8'), ['health_check failed']]
      end
    end

    def database_reachable?
      ActiveRecord::Base.connection_pool.with_connection { |connection| connection.select_value('SELECT 1') }
      true
    rescue StandardError
      false
    end

    def redis_reachable?
      redis = Redis.new(url: Standin.redis_url, connect_timeout: 2, read_timeout: 2, write_timeout: 2,
                        reconnect_attempts: 0)
      redis.ping == 'PONG'
    rescue StandardError
      false
    ensure
      redis&.close
    end

    def domain
      HttpHeaders.web_domain
    end

    def rules_json
      Rule.ordered.map { |rule| { id: rule.id.to_s, text: rule.text, hint: rule.hint } }
    end

    def contact_account
      account = Account.find_local(Setting['site_contact_username'].to_s)
      account && { id: account.id.to_s, username: account.username, acct: account.acct, display_name: account.display_name }
    end

    def languages
      [ENV.fetch('DEFAULT_LOCALE', 'en')]
    end

    def instance_v1(_request)
      mode = Setting['registrations_mode']
      public_json(uri: ENV.fetch('LOCAL_DOMAIN', domain), title: Setting['site_title'],
                  short_description: Setting['site_short_description'],
                  description: Setting['site_short_description'],
                  email: Setting['site_contact_email'], version: Mastodon::Version.to_s,
                  urls: { streaming_api: "wss://#{domain}" },
                  stats: { user_count: User.count, status_count: Status.count, domain_count: 0 },
                  languages: languages, registrations: mode != 'none', approval_required: mode == 'approved',
                  invites_enabled: false, contact_account: contact_account, rules: rules_json)
    end

    def instance_v2(_request)
      mode = Setting['registrations_mode']
      # InstancePresenter#domain is LOCAL_DOMAIN (the accounts' domain), not the web domain.
      public_json(domain: ENV.fetch('LOCAL_DOMAIN', domain), title: Setting['site_title'],
                  version: Mastodon::Version.to_s,
                  source_url: 'https://example.invalid/mastodon-standin',
                  description: Setting['site_short_description'],
                  usage: { users: { active_month: User.count } },
                  languages: languages,
                  configuration: { urls: { streaming: "wss://#{domain}" },
                                   media_attachments: { image_size_limit: 16_777_216, video_size_limit: 103_809_024 } },
                  registrations: { enabled: mode != 'none', approval_required: mode == 'approved',
                                   reason_required: mode == 'approved' && Setting['require_invite_text'] == true,
                                   message: mode == 'none' ? Setting['closed_registrations_message'] : nil },
                  contact: { email: Setting['site_contact_email'], account: contact_account },
                  rules: rules_json)
    end

    def instance_rules(_request)
      public_json(rules_json)
    end

    def paragraphs(text)
      text.to_s.split(/\n{2,}/).map { |para| "<p>#{ERB::Util.html_escape(para.strip)}</p>" }.join("\n")
    end

    # Mastodon serves its web app here (a landing page for visitors); the stand-in says what it is.
    def landing(_request)
      title = ERB::Util.html_escape(Setting['site_title'].presence || domain)
      html(200, "#{Setting['site_title'].presence || domain} (Mastodon stand-in)",
           "<h1>#{title}</h1>" \
           '<p id="standin">This server runs the <strong>Mastodon stand-in</strong>, a small test ' \
           'application that imitates the interfaces of Mastodon for automated tests. ' \
           'It is not Mastodon and has no timelines, accounts to sign in to or federation.</p>' \
           "<section id=\"description\">#{paragraphs(Setting['site_short_description'])}</section>" \
           "<p id=\"version\">Imitating Mastodon #{ERB::Util.html_escape(Mastodon::Version.to_s)} " \
           "on #{ERB::Util.html_escape(domain)}.</p>" \
           '<nav><a href="/about">About</a> &middot; <a href="/privacy-policy">Privacy policy</a> &middot; ' \
           '<a href="/api/v2/instance">Instance information (JSON)</a></nav>')
    end

    def about(_request)
      rules = Rule.ordered.map { |r| "<li>#{ERB::Util.html_escape(r.text)}</li>" }.join
      html(200, "About #{Setting['site_title']}",
           "<h1>#{ERB::Util.html_escape(Setting['site_title'])}</h1>" \
           "<section id=\"description\">#{paragraphs(Setting['site_short_description'])}</section>" \
           "<section id=\"extended\">#{paragraphs(Setting['site_extended_description'])}</section>" \
           "<section id=\"rules\"><ol>#{rules}</ol></section>" \
           "<p id=\"contact\">#{ERB::Util.html_escape(Setting['site_contact_email'])}</p>")
    end

    def privacy_policy(_request)
      html(200, 'Privacy Policy', "<h1>Privacy Policy</h1><section id=\"terms\">#{paragraphs(Setting['site_terms'])}</section>")
    end

    # app/controllers/api/v1/media_controller.rb and api/v2/media_controller.rb:
    # `doorkeeper_authorize! :write, :'write:media'` and `require_user!`, then the attachment's
    # content-type validation (422 from Api::BaseController's RecordInvalid handler). Mastodon
    # detects the type from the file's content; the stand-in trusts the declared one.
    def media_create(request)
      user = authorize_user!(request, 'write', 'write:media')
      upload = request.params['file']
      raise HttpError.new(422, "Validation failed: File can't be blank") unless upload.is_a?(Hash) && upload[:tempfile]

      content_type = upload[:type].to_s.split(';').first.to_s.strip.downcase
      kind = MEDIA_TYPES.find { |_, types| types.include?(content_type) }&.first
      raise HttpError.new(422, 'Validation failed: File content type is invalid, File is invalid') if kind.nil?

      media = MediaAttachment.new(account: user.account)
      media.store!(upload[:tempfile], upload[:filename] || 'upload.bin', content_type)
      json(200, id: media.id.to_s, type: kind, url: media.url, preview_url: nil, remote_url: nil,
                text_url: nil, meta: {}, description: nil, blurhash: nil)
    end

    def job_create(request)
      marker = params(request)['marker'].to_s
      raise HttpError.new(422, 'marker is required') if marker.empty?

      jid = StandinPingWorker.perform_async(marker)
      json(202, jid: jid, marker: marker)
    end

    # --- admin -------------------------------------------------------------------------

    # Doorkeeper's answers in Api::BaseController: 401 without a valid token, 403 when the
    # token has none of the scopes (a parent scope such as `write` covers `write:media`).
    def doorkeeper_authorize!(request, *scopes)
      header = request.get_header('HTTP_AUTHORIZATION').to_s
      token = header[/\ABearer\s+(\S+)\z/, 1]
      access = token && Doorkeeper::AccessToken.by_token(token)
      raise HttpError.new(401, 'The access token is invalid') if access.nil?
      raise HttpError.new(403, 'This action is outside the authorized scopes') unless scopes.any? { |s| access.includes_scope?(s) }

      access
    end

    # Api::BaseController#require_user!: the token must belong to a user who may sign in.
    def authorize_user!(request, *scopes)
      user = doorkeeper_authorize!(request, *scopes).resource_owner
      raise HttpError.new(422, 'This method requires an authenticated user') if user.nil?
      raise HttpError.new(403, 'Your login is missing a confirmed e-mail address') if user.confirmed_at.nil?
      raise HttpError.new(403, 'Your login is currently disabled') if user.disabled
      raise HttpError.new(403, 'Your login is currently pending approval') unless user.approved

      user
    end

    def authorize!(request, scope)
      user = doorkeeper_authorize!(request, scope).resource_owner
      raise HttpError.new(403, 'This action is not allowed') unless user&.role&.can?(:manage_federation)

      user
    end

    def block_json(block)
      { id: block.id.to_s, domain: block.domain, digest: Digest::SHA256.hexdigest(block.domain),
        created_at: block.created_at.utc.iso8601(3), severity: block.severity,
        reject_media: block.reject_media, reject_reports: block.reject_reports,
        private_comment: block.private_comment, public_comment: block.public_comment, obfuscate: block.obfuscate }
    end

    def block_attributes(input)
      attrs = input.slice(*BLOCK_FIELDS)
      %w(reject_media reject_reports obfuscate).each { |key| attrs[key] = boolean(attrs[key]) if attrs.key?(key) }
      if attrs.key?('severity') && !DomainBlock.severities.key?(attrs['severity'].to_s)
        raise HttpError.new(422, "Validation failed: Severity is not included in the list")
      end

      attrs
    end

    def domain_blocks_index(request)
      authorize!(request, 'admin:read:domain_blocks')
      json(200, DomainBlock.order(:id).map { |b| block_json(b) })
    end

    def domain_blocks_show(request, id)
      authorize!(request, 'admin:read:domain_blocks')
      json(200, block_json(DomainBlock.find(id)))
    end

    def domain_blocks_create(request)
      authorize!(request, 'admin:write:domain_blocks')
      attrs = block_attributes(params(request))
      existing = DomainBlock.find_by(domain: attrs['domain'].to_s.strip.downcase)
      return json(422, error: "You have already imposed stricter limits on #{existing.domain}.", existing_domain_block: block_json(existing)) if existing

      json(200, block_json(DomainBlock.create!(attrs)))
    end

    def domain_blocks_update(request, id)
      authorize!(request, 'admin:write:domain_blocks')
      block = DomainBlock.find(id)
      block.update!(block_attributes(params(request)).except('domain'))
      json(200, block_json(block))
    end

    def domain_blocks_destroy(request, id)
      authorize!(request, 'admin:write:domain_blocks')
      DomainBlock.find(id).destroy!
      json(200, {})
    end

    def allow_json(allow)
      { id: allow.id.to_s, domain: allow.domain, created_at: allow.created_at.utc.iso8601(3) }
    end

    def domain_allows_index(request)
      authorize!(request, 'admin:read:domain_allows')
      json(200, DomainAllow.order(:id).map { |a| allow_json(a) })
    end

    def domain_allows_show(request, id)
      authorize!(request, 'admin:read:domain_allows')
      json(200, allow_json(DomainAllow.find(id)))
    end

    def domain_allows_create(request)
      authorize!(request, 'admin:write:domain_allows')
      domain = params(request)['domain'].to_s.strip.downcase
      json(200, allow_json(DomainAllow.find_or_create_by!(domain: domain)))
    end

    def domain_allows_destroy(request, id)
      authorize!(request, 'admin:write:domain_allows')
      DomainAllow.find(id).destroy!
      json(200, {})
    end
  end
end
