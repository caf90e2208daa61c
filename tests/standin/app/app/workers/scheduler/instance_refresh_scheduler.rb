# frozen_string_literal: true

module Scheduler
  # Mastodon's Scheduler::InstanceRefreshScheduler refreshes the `instances` materialized view,
  # which is harmless and idempotent: roles/mastodon's upgrade health gate pushes one to prove
  # Sidekiq processes jobs. The stand-in has no such view and writes a job-run row instead.
  class InstanceRefreshScheduler
    include Sidekiq::Job
    sidekiq_options retry: 0

    def perform
      StandinJobRun.create!(marker: 'instance-refresh', queue: 'default', pid: Process.pid)
    end
  end
end
