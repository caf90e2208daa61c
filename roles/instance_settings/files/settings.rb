# frozen_string_literal: true

# instance_settings/settings.rb -- set site settings (no API upstream) to the given values.
#
# STDIN: {"dry_run": true|false, "settings": {"site_title": "...", ...}}
# Values are JSON strings, booleans, integers or null and are stored as given through
# Setting[key] = value (Mastodon serialises them). A key is changed only when the stored value
# differs (strict equality, so a value stored with another type is rewritten once).
#
# Prints `INSTANCE_SETTINGS_RESULT {json}` with changes [{action: set, key, before, after}],
# and before/after mappings for --diff.

require 'json'

input = JSON.parse($stdin.read)
dry_run = input.fetch('dry_run') != false
desired = input.fetch('settings')
raise ArgumentError, 'settings must be a JSON object' unless desired.is_a?(Hash)

changes = []
before = {}
desired.keys.sort.each do |key|
  current = Setting[key]
  before[key] = current
  next if current == desired[key]

  changes << { 'action' => 'set', 'key' => key, 'before' => current, 'after' => desired[key] }
end

unless dry_run || changes.empty?
  Setting.transaction do
    changes.each { |change| Setting[change['key']] = change['after'] }
  end
end

result = { 'changes' => changes, 'before' => before, 'after' => desired.sort.to_h }
puts "INSTANCE_SETTINGS_RESULT #{JSON.generate(result)}"
