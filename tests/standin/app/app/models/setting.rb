# frozen_string_literal: true

# Site-wide settings (stand-in): rows of (var, YAML value) with defaults from
# config/settings.yml, read and written through Setting[key] like Mastodon.
class Setting < ApplicationRecord
  validates :var, presence: true, uniqueness: true

  def value
    raw = self[:value]
    raw.nil? ? nil : YAML.safe_load(raw, permitted_classes: [Symbol, Time, Date, ActiveSupport::HashWithIndifferentAccess], aliases: true)
  end

  def value=(new_value)
    self[:value] = new_value.to_yaml
  end

  class << self
    def defaults
      @defaults ||= YAML.safe_load(File.read(File.join(Standin.root, 'config/settings.yml')))['defaults']
    end

    def [](key)
      record = find_by(var: key.to_s)
      record ? record.value : defaults[key.to_s]
    end

    def []=(key, value)
      record = find_or_initialize_by(var: key.to_s)
      record.value = value
      record.save!
    end

    def keys
      (defaults.keys + pluck(:var)).uniq
    end

    def method_missing(name, *args)
      key = name.to_s
      if key.end_with?('=') && args.size == 1
        self[key.delete_suffix('=')] = args.first
      elsif args.empty? && defaults.key?(key)
        self[key]
      else
        super
      end
    end

    def respond_to_missing?(name, include_private = false)
      defaults.key?(name.to_s.delete_suffix('=')) || super
    end
  end
end
