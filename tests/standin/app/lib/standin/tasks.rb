# frozen_string_literal: true

require 'fileutils'
require 'json'
require 'digest'

module Standin
  # Implementation of the stand-in's `bin/rails` tasks.
  module Tasks
    module_function

    TASKS = {
      'db:create' => :db_create,
      'db:setup' => :db_setup,
      'db:migrate' => :db_migrate,
      'db:version' => :db_version,
      'db:seed' => :db_seed,
      'assets:precompile' => :assets_precompile,
    }.freeze

    def run(argv)
      command = argv.shift
      if TASKS.key?(command)
        task(command)
      elsif %w(runner r).include?(command)
        runner(argv)
      else
        warn "Unknown command: #{command.inspect} (stand-in supports db:create, db:setup, db:migrate, " \
             'db:version, db:seed, assets:precompile, runner)'
        1
      end
    rescue Standin::BootError, ActiveRecord::ActiveRecordError, PG::Error => e
      warn "#{e.class}: #{e.message}"
      1
    end

    # A task (Rake's in Rails) that raises is reported the way Rake reports it, exit status 1:
    #   bin/rails aborted!
    #   StandardError: An error has occurred, this and all later migrations canceled:
    #
    #   <the migration's message>
    #   <backtrace lines inside the application>
    #
    #   Caused by:
    #   <the original error, e.g. the RuntimeError's message alone, as Rake prints it>
    #   Tasks: TOP => db:migrate
    #   (See full trace by running task with --trace)
    # (Ruby 3.2+'s Rake appends " (StandardError)" to the first message line; the stand-in
    # prints the same text on both releases.)
    def task(name)
      send(TASKS.fetch(name))
    rescue StandardError => e
      report_aborted(name, e)
      1
    end

    def report_aborted(name, error)
      warn 'bin/rails aborted!'
      seen = []
      while error && !seen.include?(error)
        warn "\nCaused by:" unless seen.empty?
        seen << error
        warn error.instance_of?(RuntimeError) ? error.message : "#{error.class}: #{error.message}"
        app_lines = Array(error.backtrace).select { |line| line.start_with?(Standin.root) }
        warn app_lines.join("\n") unless app_lines.empty?
        error = error.cause
      end
      warn "Tasks: TOP => #{name}"
      warn '(See full trace by running task with --trace)'
    end

    def migration_paths
      paths = [File.join(Standin.root, 'db/migrate')]
      paths << File.join(Standin.root, 'db/post_migrate') unless ENV['SKIP_POST_DEPLOYMENT_MIGRATIONS'] == 'true'
      paths
    end

    def migration_context(paths = migration_paths)
      # 6.1 needs the SchemaMigration class; 7.1+ takes an instance bound to the connection
      # pool and makes one itself when the argument is left out.
      if ActiveRecord.version >= Gem::Version.new('7.1')
        ActiveRecord::MigrationContext.new(paths)
      else
        ActiveRecord::MigrationContext.new(paths, ActiveRecord::SchemaMigration)
      end
    end

    # ActiveRecord 7.2 connects lazily (a fresh adapter is not `active?` yet), so ask the server.
    def database_exists?
      ActiveRecord::Base.connection.select_value('SELECT 1')
      true
    rescue ActiveRecord::NoDatabaseError
      false
    end

    def db_create
      if database_exists?
        puts "Database '#{Standin.database_config[:database]}' already exists"
        return 0
      end
      config = Standin.database_config
      ActiveRecord::Base.establish_connection(config.merge(database: 'postgres'))
      ActiveRecord::Base.connection.create_database(config[:database], encoding: 'unicode')
      puts "Created database '#{config[:database]}'"
      0
    ensure
      Standin.connect!
    end

    def db_setup
      status = db_create
      return status unless status.zero?

      if ActiveRecord::Base.connection.table_exists?(:accounts)
        warn 'Schema already loaded: refusing to run db:setup over an existing database'
        return 1
      end
      pause_migrations_when_asked
      migration_context([File.join(Standin.root, 'db/migrate'), File.join(Standin.root, 'db/post_migrate')]).migrate
      db_seed
    end

    def db_migrate
      ActiveRecord::Migration.verbose = true
      pause_migrations_when_asked
      migration_context.migrate
      0
    end

    # TEST-ONLY knob, no Mastodon behaviour: while this file exists (only
    # tests/molecule/site-debian13/interrupted_converge.py writes it), each migration appends its
    # version to paused-migrations beside it, and every migration after the first of the run
    # then waits as many seconds as the file says, inside its transaction, so that a test can
    # kill a run in the middle of its migrations with one already committed.
    MIGRATION_PAUSE_KNOB = '/run/testbed-standin/pause-migrations-seconds'

    def pause_migrations_when_asked
      return unless File.file?(MIGRATION_PAUSE_KNOB)

      seconds = File.read(MIGRATION_PAUSE_KNOB).to_f
      log = File.join(File.dirname(MIGRATION_PAUSE_KNOB), 'paused-migrations')
      ran = 0
      ActiveRecord::Migration.prepend(Module.new do
        define_method(:migrate) do |direction|
          result = super(direction)
          File.open(log, 'a') { |f| f.puts(version) }
          ran += 1
          sleep(seconds) if ran > 1
          result
        end
      end)
    end

    def db_version
      puts "Current version: #{migration_context.current_version}"
      0
    end

    def db_seed
      load File.join(Standin.root, 'db/seeds.rb')
      0
    end

    # Like Mastodon 4.4+'s Vite build (config/vite.json: publicOutputDir "packs"): digested files
    # under public/packs/assets/ and Vite's manifest at public/packs/.vite/manifest.json, each
    # entry with the sha384 integrity Mastodon's manifest plugin adds.
    def assets_precompile
      out = File.join(Standin.root, 'public/packs')
      FileUtils.mkdir_p(File.join(out, 'assets'))
      FileUtils.mkdir_p(File.join(out, '.vite'))
      sources = Dir[File.join(Standin.root, 'app/javascript/**/*')].select { |f| File.file?(f) }.sort
      manifest = {}
      sources.each do |source|
        body = File.read(source)
        name = File.basename(source)
        digested = "assets/#{File.basename(name, '.*')}-#{Digest::SHA256.hexdigest(body)[0, 8]}#{File.extname(name)}"
        File.write(File.join(out, digested), body)
        src = source.delete_prefix("#{Standin.root}/")
        manifest[src] = { 'file' => digested, 'name' => File.basename(name, '.*'), 'src' => src, 'isEntry' => true,
                          'integrity' => "sha384-#{Digest::SHA384.base64digest(body)}" }
      end
      File.write(File.join(out, '.vite/manifest.json'), JSON.pretty_generate(manifest))
      puts "Compiled #{sources.size} asset(s) for #{Mastodon::Version}"
      0
    end

    def runner(argv)
      source = argv.shift
      if source.nil?
        warn 'Usage: bin/rails runner FILE|CODE [ARGS...]'
        return 1
      end
      ARGV.replace(argv)
      if File.file?(source)
        load File.expand_path(source)
      else
        eval(source, TOPLEVEL_BINDING, 'runner') # rubocop:disable Security/Eval
      end
      0
    end
  end
end
