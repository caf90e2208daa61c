# frozen_string_literal: true

module Standin
  # Minimal reader for dotenv-style files (KEY=value, optional quotes, comments,
  # optional `export`). Like dotenv-rails, variables already in the process
  # environment win over the file.
  module Dotenv
    LINE = /\A\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)\z/

    module_function

    def parse(text)
      text.each_line.with_object({}) do |raw, vars|
        line = raw.chomp
        next if line.strip.empty? || line.lstrip.start_with?('#')

        match = LINE.match(line)
        next unless match

        vars[match[1]] = unquote(match[2].strip)
      end
    end

    def unquote(value)
      if value.length >= 2 && value.start_with?('"') && value.end_with?('"')
        value[1..-2].gsub('\\n', "\n").gsub('\\"', '"')
      elsif value.length >= 2 && value.start_with?("'") && value.end_with?("'")
        value[1..-2]
      else
        value.sub(/\s+#.*\z/, '')
      end
    end

    def load(path)
      return {} unless File.exist?(path)

      parse(File.read(path)).each { |key, value| ENV[key] = value unless ENV.key?(key) }
    end
  end
end
