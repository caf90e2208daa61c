# frozen_string_literal: true

# instance_settings/batch_driver.rb -- several scripts in one `bin/rails runner` process.
#
# The role's action plugin instance_settings_rails_runner reads this file on the controller and
# passes it to the runner module (option `driver`), which writes it next to the scripts and
# runs it once with `bin/rails runner`. It evaluates no input: the scripts are files the role
# ships, their inputs travel as JSON documents on a fresh $stdin.
#
# STDIN: {"scripts": [{"name": "rules.rb", "path": "/tmp/.../rules.rb", "input": {...}}, ...]}
# Loads each script in turn (wrapped in an anonymous module, so their helper methods stay
# apart) with its input as $stdin and its $stdout captured; a script that exits or raises
# stops the batch. Prints one line: INSTANCE_SETTINGS_BATCH {"runs": [{name, status, output,
# error}, ...]}.
require 'json'
require 'stringio'

batch = JSON.parse($stdin.read)
original_stdin = $stdin
original_stdout = $stdout
runs = []
batch.fetch('scripts').each do |entry|
  captured = StringIO.new
  status = 0
  error = nil
  begin
    $stdin = StringIO.new(JSON.generate(entry.fetch('input')))
    $stdout = captured
    load(entry.fetch('path'), true)
  rescue SystemExit => e
    status = e.status
  rescue StandardError, ScriptError => e
    status = 1
    error = "#{e.class}: #{e.message}"
  ensure
    $stdin = original_stdin
    $stdout = original_stdout
  end
  runs << { 'name' => entry.fetch('name'), 'status' => status,
            'output' => captured.string, 'error' => error }
  break unless status.zero?
end
$stdout.puts "INSTANCE_SETTINGS_BATCH #{JSON.generate('runs' => runs)}"
$stdout.flush
