# frozen_string_literal: true

# analytics/token.rb -- the read-only API token of the course analytics.
#
# STDIN: {"dry_run": bool, "username": "course_analytics", "app_name": "...", "scopes": "read"}
# Finds the OAuth application by name (creates it when missing) and the newest non-revoked token
# of that application for the account with exactly those scopes (creates one when missing), so a
# re-run finds the same token and nothing changes. Prints `ANALYTICS_TOKEN_RESULT {json}` with
# `changes` and `token` (null in dry-run mode when there is none yet). The task has no_log: true.

require 'json'

input = JSON.parse($stdin.read)
dry_run = input.fetch('dry_run') != false
scopes = input.fetch('scopes')
wanted = scopes.split.sort

account = Account.find_local(input.fetch('username'))
user = account&.user
if user.nil?
  puts "ANALYTICS_TOKEN_RESULT #{JSON.generate('error' => "no local account #{input['username'].inspect} with a login")}"
  exit 1
end

changes = []
app = Doorkeeper::Application.find_by(name: input.fetch('app_name'))
token = app && Doorkeeper::AccessToken
               .where(application_id: app.id, resource_owner_id: user.id, revoked_at: nil)
               .order(id: :desc)
               .find { |candidate| candidate.scopes.to_s.split.sort == wanted }
changes << 'application' if app.nil?
changes << 'token' if token.nil?

unless dry_run || token
  Doorkeeper::Application.transaction do
    app ||= Doorkeeper::Application.create!(name: input.fetch('app_name'), redirect_uri: 'urn:ietf:wg:oauth:2.0:oob', scopes: scopes)
    token = Doorkeeper::AccessToken.create!(application_id: app.id, resource_owner_id: user.id, scopes: scopes)
  end
end

puts "ANALYTICS_TOKEN_RESULT #{JSON.generate('changes' => changes, 'token' => token&.token)}"
