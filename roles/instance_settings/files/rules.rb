# frozen_string_literal: true

# instance_settings/rules.rb -- match the server rules to community/rules.yml exactly.
#
# Run by the role as `bin/rails runner rules.rb` with a JSON document on STDIN:
#   {"dry_run": true|false, "rules": [{"text": "...", "hint": "..."}, ...]}
# List order is display order (priority 0, 1, 2, ...). User text only ever travels as JSON
# data into ActiveRecord attributes; it is never evaluated.
#
# Prints one line `INSTANCE_SETTINGS_RESULT {json}` with
#   changes: [{action: create|update|remove, ...}]  (empty = nothing to do)
#   before / after: the ordered rule lists, for Ansible's --diff
# In dry-run mode nothing is written; otherwise the same changes are applied in one
# transaction and reported.

require 'json'

input = JSON.parse($stdin.read)
dry_run = input.fetch('dry_run') != false
desired = input.fetch('rules').map { |r| { 'text' => r.fetch('text'), 'hint' => r.fetch('hint', '') || '' } }

def rule_view(rule)
  { 'text' => rule.text, 'hint' => rule.hint.to_s }
end

current = Rule.ordered.to_a
before_view = current.map { |rule| rule_view(rule) }
pool = current.dup
assigned = {}

# Pass 1: a rule whose text is unchanged keeps its record (and its id).
desired.each_with_index do |want, index|
  match = pool.find { |rule| rule.text == want['text'] }
  next if match.nil?

  assigned[index] = match
  pool.delete(match)
end

# Pass 2: remaining wanted rules take over remaining records in display order (an edit).
desired.each_index do |index|
  next if assigned.key?(index) || pool.empty?

  assigned[index] = pool.shift
end

changes = []
desired.each_with_index do |want, index|
  rule = assigned[index]
  if rule.nil?
    changes << { 'action' => 'create', 'position' => index + 1, 'text' => want['text'], 'hint' => want['hint'] }
    next
  end

  before = { 'text' => rule.text, 'hint' => rule.hint.to_s, 'priority' => rule.priority }
  after = { 'text' => want['text'], 'hint' => want['hint'], 'priority' => index }
  fields = after.keys.reject { |key| before[key] == after[key] }
  next if fields.empty?

  changes << {
    'action' => 'update', 'id' => rule.id.to_s, 'position' => index + 1, 'fields' => fields,
    'before' => before.slice(*fields), 'after' => after.slice(*fields)
  }
end
pool.each do |rule|
  changes << { 'action' => 'remove', 'id' => rule.id.to_s, 'text' => rule.text, 'hint' => rule.hint.to_s }
end

unless dry_run || changes.empty?
  Rule.transaction do
    desired.each_with_index do |want, index|
      rule = assigned[index] || Rule.new
      rule.text = want['text']
      rule.hint = want['hint']
      rule.priority = index
      rule.save! if rule.new_record? || rule.changed?
    end
    pool.each(&:discard)
  end
end

result = {
  'changes' => changes,
  'before' => before_view,
  'after' => desired,
}
puts "INSTANCE_SETTINGS_RESULT #{JSON.generate(result)}"
