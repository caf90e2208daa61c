# frozen_string_literal: true

module Scheduler
  # Stand-in only: a job on the `scheduler` queue (which must run in exactly one process).
  class StandinHeartbeatScheduler
    include Sidekiq::Job
    sidekiq_options queue: 'scheduler', retry: 0

    def perform(marker = 'heartbeat')
      StandinJobRun.create!(marker: marker.to_s, queue: 'scheduler', pid: Process.pid)
    end
  end
end
