# frozen_string_literal: true

# Mastodon STAND-IN: the release this tree pretends to be. build-repo.sh rewrites the
# numbers for every tag it creates.
module Mastodon
  module Version
    MAJOR = 4
    MINOR = 5
    PATCH = 1

    module_function

    def to_s
      "#{MAJOR}.#{MINOR}.#{PATCH}"
    end
  end
end
