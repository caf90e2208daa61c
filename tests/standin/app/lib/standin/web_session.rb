# frozen_string_literal: true

require 'base64'
require 'json'
require 'openssl'
require 'securerandom'
require 'active_support/security_utils'

module Standin
  # Signing in with a browser, and the one admin page the course analytics asks (roles/analytics:
  # nginx's auth_request sends the browser's cookies to /admin/reports and serves the snapshots
  # only on a 2xx). As in Mastodon: the sign-in form carries an authenticity token that must match
  # the one in the session cookie (ApplicationController: protect_from_forgery, else 422); a
  # signed-in browser holds a signed `_session_id` naming its session_activations row (Devise's
  # after_set_user hook); the admin controllers answer 403 to anyone whose role lacks the page's
  # permission, signed in or not (Admin::BaseController, concerns/authorization.rb: a Pundit
  # refusal becomes Mastodon::NotPermittedError, rescued with `forbidden`), and 200 otherwise.
  # The cookies' encoding is the stand-in's own (HMAC-SHA256 with SECRET_KEY_BASE), not Rails'.
  module WebSession
    ROUTES = [
      ['GET', %r{\A/auth/sign_in\z}, :sign_in_form],
      ['POST', %r{\A/auth/sign_in\z}, :sign_in],
      ['GET', %r{\A/admin/reports\z}, :admin_reports],
    ].freeze

    SESSION_COOKIE = '_mastodon_session'
    ACTIVATION_COOKIE = '_session_id'
    COOKIE_OPTIONS = { path: '/', secure: true, httponly: true, same_site: :lax }.freeze

    private

    def sign_in_form(request)
      csrf = SecureRandom.base64(32)
      field = ERB::Util.html_escape(csrf)
      response = html(200, 'Log in (Mastodon stand-in)', <<~HTML, HttpHeaders.error)
        <form action="/auth/sign_in" method="post">
          <input type="hidden" name="authenticity_token" value="#{field}">
          <input type="email" name="user[email]"> <input type="password" name="user[password]">
          <button type="submit">Log in</button>
        </form>
      HTML
      set_cookie(response, SESSION_COOKIE, sign(JSON.generate('csrf' => csrf)))
    end

    def sign_in(request)
      session = verified_json(request.cookies[SESSION_COOKIE])
      token = request.params['authenticity_token'].to_s
      unless session['csrf'].is_a?(String) && ActiveSupport::SecurityUtils.secure_compare(session['csrf'], token)
        return html(422, 'The change you wanted was rejected (Mastodon stand-in)',
                    '<h1>The change you wanted was rejected.</h1>', HttpHeaders.error)
      end

      credentials = request.params['user'].is_a?(Hash) ? request.params['user'] : {}
      user = User.find_by(email: credentials['email'].to_s.strip.downcase)
      # Devise's failure app sends a browser back to the form; a second factor is not offered.
      return redirect('/auth/sign_in') unless user&.valid_password?(credentials['password'].to_s) &&
                                             functional?(user) && !user.otp_required_for_login?

      activation = SessionActivation.create!(user: user, ip: request.ip, user_agent: request.user_agent.to_s)
      response = redirect('/')
      set_cookie(response, ACTIVATION_COOKIE, sign(activation.session_id))
      set_cookie(response, SESSION_COOKIE, sign(JSON.generate('csrf' => SecureRandom.base64(32))))
    end

    def admin_reports(request)
      user = signed_in_user(request)
      unless user&.role&.can?(:manage_reports)
        return html(403, 'You are not allowed to view this page (Mastodon stand-in)',
                    '<h1>You are not allowed to view this page.</h1>', HttpHeaders.error)
      end

      html(200, 'Reports (Mastodon stand-in)', '<h1>Reports</h1><p>No reports.</p>', HttpHeaders.error)
    end

    # The session's user while their row exists and they may still sign in (suspended, disabled
    # or unconfirmed accounts count as signed out here).
    def signed_in_user(request)
      session_id = verified(request.cookies[ACTIVATION_COOKIE])
      user = session_id && SessionActivation.find_by(session_id: session_id)&.user
      user if user && functional?(user)
    end

    def functional?(user)
      user.confirmed? && user.approved && !user.disabled && user.account.suspended_at.nil?
    end

    def redirect(location)
      [302, HttpHeaders.error.merge('location' => location, 'content-type' => 'text/html; charset=utf-8'), ['']]
    end

    def set_cookie(response, name, value)
      Rack::Utils.set_cookie_header!(response[1], name, COOKIE_OPTIONS.merge(value: value))
      response
    end

    def sign(value)
      data = Base64.strict_encode64(value)
      "#{data}--#{OpenSSL::HMAC.hexdigest('SHA256', ENV.fetch('SECRET_KEY_BASE'), data)}"
    end

    def verified(cookie)
      data, digest = cookie.to_s.split('--', 2)
      return nil if data.nil? || digest.nil?

      expected = OpenSSL::HMAC.hexdigest('SHA256', ENV.fetch('SECRET_KEY_BASE'), data)
      Base64.strict_decode64(data) if ActiveSupport::SecurityUtils.secure_compare(expected, digest)
    rescue ArgumentError
      nil
    end

    def verified_json(cookie)
      value = verified(cookie)
      parsed = value && JSON.parse(value)
      parsed.is_a?(Hash) ? parsed : {}
    rescue JSON::ParserError
      {}
    end
  end
end
