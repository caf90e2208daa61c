# frozen_string_literal: true

# Stand-in only: proves sidekiq consumes the default queue by writing a row.
class StandinPingWorker
  include Sidekiq::Job
  sidekiq_options queue: 'default', retry: 2

  def perform(marker)
    StandinJobRun.create!(marker: marker.to_s, queue: 'default', pid: Process.pid)
  end
end
