# frozen_string_literal: true

# Stand-in only: one row per job processed by sidekiq.
class StandinJobRun < ApplicationRecord
end
