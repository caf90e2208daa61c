# frozen_string_literal: true

# The upgrade's health gate: proves Sidekiq processes jobs again. Pushes one job of a harmless
# class and waits until a Sidekiq process has taken it off its queue and the processed counter
# moved without the failed counter moving. Usage (as the mastodon user, in the live release):
#   bin/rails runner sidekiq_probe.rb CLASS QUEUE TIMEOUT_SECONDS
# Prints one JSON line; exits 1 with the reason when the job was not processed in time.
require 'json'
require 'sidekiq/api'

klass, queue, timeout = ARGV
abort 'usage: sidekiq_probe.rb CLASS QUEUE TIMEOUT_SECONDS' if klass.to_s.empty? || queue.to_s.empty?
deadline = Time.now + Integer(timeout || '60')
started = Time.now

stats = Sidekiq::Stats.new
processed_before = stats.processed
failed_before = stats.failed
jid = Sidekiq::Client.push('class' => klass, 'queue' => queue, 'args' => [], 'retry' => false)
abort "could not push a #{klass} job onto #{queue}" if jid.nil?

loop do
  waiting = Sidekiq::Queue.new(queue).any? { |job| job.jid == jid }
  stats = Sidekiq::Stats.new
  if !waiting && stats.failed > failed_before
    abort "the #{klass} probe job failed in Sidekiq (failed counter #{failed_before} -> #{stats.failed})"
  end
  if !waiting && stats.processed > processed_before
    puts JSON.generate(jid: jid, class: klass, queue: queue,
                       seconds: (Time.now - started).round(2), processes: Sidekiq::ProcessSet.new.size)
    exit 0
  end
  if Time.now > deadline
    where = waiting ? "still waiting on the #{queue} queue" : 'taken but not counted as processed'
    abort "Sidekiq did not process the #{klass} probe job within #{timeout} s (#{where}; " \
          "#{Sidekiq::ProcessSet.new.size} Sidekiq processes)"
  end
  sleep 0.5
end
