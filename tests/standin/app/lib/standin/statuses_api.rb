# frozen_string_literal: true

module Standin
  # The public conversation through the REST API, in Mastodon's JSON shapes (REST::StatusSerializer,
  # REST::AccountSerializer): the hashtag timeline, a status, its context, who favourited and who
  # boosted it. Lists are paginated as Api::BaseController does it: `limit` (capped), `max_id`,
  # `since_id` and `min_id`, and a `Link` header with rel="next" (max_id) and rel="prev" (min_id).
  # Only public and unlisted statuses are shown (the stand-in has no followers); a token, when
  # one is sent, must be valid and carry a read scope (`read` or `read:statuses`/`read:accounts`).
  module StatusesApi
    # app/controllers/api/v1/timelines/tag_controller.rb: DEFAULT_STATUSES_LIMIT 20, capped at 40;
    # app/controllers/api/v1/statuses/favourited_by_accounts_controller.rb: DEFAULT_ACCOUNTS_LIMIT 40, capped at 80.
    STATUSES_LIMIT = [20, 40].freeze
    ACCOUNTS_LIMIT = [40, 80].freeze

    ROUTES = [
      ['GET', %r{\A/api/v1/timelines/tag/([^/]+)\z}, :tag_timeline],
      ['GET', %r{\A/api/v1/statuses/(\d+)\z}, :status_show],
      ['GET', %r{\A/api/v1/statuses/(\d+)/context\z}, :status_context],
      ['GET', %r{\A/api/v1/statuses/(\d+)/favourited_by\z}, :status_favourited_by],
      ['GET', %r{\A/api/v1/statuses/(\d+)/reblogged_by\z}, :status_reblogged_by],
    ].freeze

    private

    # A missing token is a visitor; a token sent must be valid and may read.
    def optional_read!(request, scope)
      return nil if request.get_header('HTTP_AUTHORIZATION').to_s.empty?

      doorkeeper_authorize!(request, 'read', scope)
    end

    def limit(request, (default, cap))
      value = Integer(request.params['limit'] || default, exception: false) || default
      value.clamp(1, cap)
    end

    # Api::PaginationConcern: rows by id, newest first; min_id asks for the page just above it.
    def paginate(request, scope, column, bounds)
      params = request.params
      count = limit(request, bounds)
      scope = scope.where("#{column} < ?", Integer(params['max_id'])) if params['max_id'].present?
      scope = scope.where("#{column} > ?", Integer(params['since_id'])) if params['since_id'].present?
      if params['min_id'].present?
        scope.where("#{column} > ?", Integer(params['min_id'])).reorder(column => :asc).limit(count).to_a.reverse
      else
        scope.reorder(column => :desc).limit(count).to_a
      end
    rescue ArgumentError
      raise HttpError.new(400, 'Invalid pagination parameter')
    end

    def link_header(path, request, first_id, last_id)
      query = request.params.except('max_id', 'since_id', 'min_id')
      base = "https://#{domain}#{path}"
      links = []
      links << "<#{base}?#{Rack::Utils.build_query(query.merge('max_id' => last_id))}>; rel=\"next\""
      links << "<#{base}?#{Rack::Utils.build_query(query.merge('min_id' => first_id))}>; rel=\"prev\""
      links.join(', ')
    end

    def paged_json(request, rows, ids, body)
      headers = HttpHeaders.api
      headers = headers.merge('link' => link_header(request.path_info, request, ids.first, ids.last)) unless rows.empty?
      json(200, body, headers)
    end

    def visible_status!(id)
      status = Status.find_by(id: Integer(id))
      raise HttpError.new(404, 'Record not found') unless status&.distributable? && status.account.suspended_at.nil?

      status
    end

    def field_json(field)
      { name: field['name'].to_s, value: ERB::Util.html_escape(field['value'].to_s), verified_at: nil }
    end

    def account_json(account)
      avatar = "https://#{domain}/avatars/original/missing.png"
      header = "https://#{domain}/headers/original/missing.png"
      { id: account.id.to_s, username: account.username, acct: account.acct,
        display_name: account.display_name, locked: false, bot: false, discoverable: true,
        indexable: false, group: false, created_at: account.created_at.utc.beginning_of_day.iso8601(3),
        note: account.note.present? ? "<p>#{ERB::Util.html_escape(account.note)}</p>" : '',
        url: account.profile_url(domain), uri: account.actor_uri(domain),
        avatar: avatar, avatar_static: avatar, header: header, header_static: header,
        followers_count: 0, following_count: 0, statuses_count: account.statuses.count,
        last_status_at: account.statuses.maximum(:created_at)&.utc&.to_date&.iso8601,
        hide_collections: false, noindex: false, emojis: [], roles: [],
        fields: Array(account.fields).map { |field| field_json(field) } }
    end

    def status_url(status)
      "https://#{domain}/@#{status.account.username}/#{status.id}"
    end

    def status_json(status, viewer)
      reblog = status.reblog
      body = {
        id: status.id.to_s, created_at: status.created_at.utc.iso8601(3),
        in_reply_to_id: status.in_reply_to_id&.to_s,
        in_reply_to_account_id: status.thread&.account_id&.to_s,
        sensitive: false, spoiler_text: '', visibility: status.visibility_name, language: 'en',
        uri: status.uri.presence || "https://#{domain}/users/#{status.account.username}/statuses/#{status.id}",
        url: reblog ? nil : status_url(status),
        replies_count: status.replies.distributable.count, reblogs_count: status.reblogs.count,
        favourites_count: status.favourites.count, quotes_count: 0, edited_at: nil,
        content: reblog ? '' : "<p>#{ERB::Util.html_escape(status.text)}</p>",
        reblog: reblog && status_json(reblog, viewer), application: nil,
        account: account_json(status.account), media_attachments: [],
        mentions: status.mentions.includes(:account).map do |mention|
          { id: mention.account.id.to_s, username: mention.account.username,
            url: mention.account.profile_url(domain), acct: mention.account.acct }
        end,
        tags: status.tags.map { |tag| { name: tag.name.downcase, url: "https://#{domain}/tags/#{tag.name.downcase}" } },
        emojis: [], card: nil, poll: nil
      }
      if viewer
        viewer_account = viewer.resource_owner&.account
        body.merge!(favourited: viewer_account ? status.favourites.exists?(account_id: viewer_account.id) : false,
                    reblogged: viewer_account ? status.reblogs.exists?(account_id: viewer_account.id) : false,
                    muted: false, bookmarked: false, pinned: false)
      end
      body
    end

    # --- the endpoints ---------------------------------------------------------------------

    def tag_timeline(request, name)
      viewer = optional_read!(request, 'read:statuses')
      tag = Tag.find_normalized(Rack::Utils.unescape_path(name))
      return json(200, []) if tag.nil?

      scope = tag.statuses.where(visibility: 0, reblog_of_id: nil)
                 .joins(:account).where(accounts: { suspended_at: nil })
      rows = paginate(request, scope, 'statuses.id', STATUSES_LIMIT)
      paged_json(request, rows, rows.map(&:id), rows.map { |status| status_json(status, viewer) })
    end

    def status_show(request, id)
      viewer = optional_read!(request, 'read:statuses')
      json(200, status_json(visible_status!(id), viewer))
    end

    # StatusRelationshipsPresenter aside, Api::V1::StatusesController#context: the chain of
    # statuses it replies to, oldest first, and every reply below it, depth first by id.
    def status_context(request, id)
      viewer = optional_read!(request, 'read:statuses')
      status = visible_status!(id)
      ancestors = []
      parent = status.thread
      while parent && ancestors.size < 40
        ancestors.unshift(parent) if parent.distributable?
        parent = parent.thread
      end
      descendants = []
      frontier = [status.id]
      until frontier.empty? || descendants.size >= 4096
        children = Status.where(in_reply_to_id: frontier).distributable.order(:id).to_a
        descendants.concat(children)
        frontier = children.map(&:id)
      end
      json(200, ancestors: ancestors.map { |s| status_json(s, viewer) },
                descendants: descendants.sort_by(&:id).map { |s| status_json(s, viewer) })
    end

    # Api::V1::Statuses::FavouritedByAccountsController: accounts, paginated by the favourite's id.
    def status_favourited_by(request, id)
      status_accounts(request, id, :favourites, 'favourites.id')
    end

    # Api::V1::Statuses::RebloggedByAccountsController: accounts, paginated by the boost's id.
    def status_reblogged_by(request, id)
      status_accounts(request, id, :reblogs, 'statuses.id')
    end

    def status_accounts(request, id, association, column)
      optional_read!(request, 'read:accounts')
      status = visible_status!(id)
      rows = paginate(request, status.public_send(association).includes(:account), column, ACCOUNTS_LIMIT)
      paged_json(request, rows, rows.map(&:id), rows.map { |row| account_json(row.account) })
    end
  end
end
