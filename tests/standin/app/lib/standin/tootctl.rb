# frozen_string_literal: true

require 'optparse'
require 'securerandom'
require 'fileutils'

module Standin
  # Implementation of the stand-in's `bin/tootctl`. Output and exit codes follow Mastodon's
  # where the roles depend on them.
  module Tootctl
    class Failure < StandardError; end

    module_function

    def run(argv)
      group = argv.shift
      action = argv.shift
      handler = "#{group}_#{action}".tr('-', '_')
      unless respond_to?(handler, true) && !group.nil?
        warn "Unknown command: tootctl #{[group, action].compact.join(' ')}"
        warn usage
        return 1
      end
      send(handler, argv)
      0
    rescue Failure, OptionParser::ParseError => e
      warn e.message
      1
    end

    def usage
      <<~TEXT
        Commands (stand-in):
          tootctl accounts create USERNAME --email EMAIL [--confirmed] [--role ROLE] [--approve]
          tootctl accounts modify USERNAME [--approve] [--role ROLE] [--confirm] [--reset-password]
                                           [--email EMAIL] [--disable] [--enable] [--disable-2fa]
          tootctl media remove [--days N]
          tootctl preview_cards remove [--days N]
          tootctl feeds build [--all] [USERNAME]
          tootctl cache clear
          tootctl search deploy
          tootctl domains purge DOMAIN...
          tootctl settings registrations open|close|approved
          tootctl version
      TEXT
    end

    def parse(argv, spec)
      options = {}
      parser = OptionParser.new do |opts|
        spec.each do |name, kind|
          flag = "--#{name.to_s.tr('_', '-')}"
          if kind == :flag
            opts.on(flag) { options[name] = true }
          else
            opts.on("#{flag} VALUE", kind) { |v| options[name] = v }
          end
        end
      end
      rest = parser.parse(argv)
      [options, rest]
    end

    def find_role!(name)
      role = UserRole.find_by(name: name)
      raise Failure, 'Cannot find user role with that name' if role.nil?

      role
    end

    def accounts_create(argv)
      options, rest = parse(argv, email: String, confirmed: :flag, role: String, approve: :flag, reattach: :flag, force: :flag)
      username = rest.first
      raise Failure, 'No username given' if username.nil?
      raise Failure, 'No email given (--email)' if options[:email].nil?

      role = options[:role] ? find_role!(options[:role]) : nil
      password = SecureRandom.hex(16)
      account = Account.new(username: username)
      user = User.new(email: options[:email], account: account, role: role, password: password,
                      confirmed_at: options[:confirmed] ? Time.now.utc : nil, approved: options[:approve] || Setting['registrations_mode'] == 'open')
      if user.save
        puts 'OK'
        puts "New password: #{password}" if options[:confirmed]
      else
        errors = user.errors.to_hash.merge(account.errors.to_hash)
        errors.reject! { |attribute, _| attribute.to_s.start_with?('account') }
        errors.each do |attribute, messages|
          warn "Failure/Error: #{attribute}"
          messages.uniq.each { |message| warn "    #{message == 'has already been taken' ? 'taken' : message}" }
        end
        raise Failure, 'Account not created'
      end
    end

    def accounts_modify(argv)
      options, rest = parse(argv, role: String, remove_role: :flag, email: String, confirm: :flag, approve: :flag,
                                  disable: :flag, enable: :flag, reset_password: :flag, disable_2fa: :flag)
      username = rest.first
      account = Account.find_local(username.to_s)
      raise Failure, 'No user with such username' if account.nil? || account.user.nil?

      user = account.user
      user.role = find_role!(options[:role]) if options[:role]
      user.role_id = nil if options[:remove_role]
      user.email = options[:email] if options[:email]
      user.confirmed_at ||= Time.now.utc if options[:confirm]
      user.approved = true if options[:approve]
      user.disabled = true if options[:disable]
      user.disabled = false if options[:enable]
      if options[:disable_2fa]
        user.otp_required_for_login = false
        user[:otp_secret] = nil
      end
      password = SecureRandom.hex(16) if options[:reset_password]
      user.password = password if password
      raise Failure, "Failure/Error: #{user.errors.full_messages.join(', ')}" unless user.save

      puts 'OK'
      puts "New password: #{password}" if password
    end

    def older_than(days)
      Time.now.utc - (days.to_i * 86_400)
    end

    def human_size(bytes)
      units = %w(B KB MB GB TB)
      size = bytes.to_f
      unit = units.shift
      while size >= 1024 && units.any?
        size /= 1024
        unit = units.shift
      end
      format('%.1f %s', size, unit)
    end

    def media_remove(argv)
      options, = parse(argv, days: Integer, concurrency: Integer, prune_profiles: :flag, remove_headers: :flag, dry_run: :flag)
      days = options.fetch(:days, 7)
      count = 0
      bytes = 0
      MediaAttachment.cached.where('created_at < ?', older_than(days)).find_each do |media|
        bytes += media.file_file_size.to_i
        media.remove_file! unless options[:dry_run]
        count += 1
      end
      puts "Removed #{count} media attachments (approx. #{human_size(bytes)})#{' (DRY RUN)' if options[:dry_run]}"
    end

    def preview_cards_remove(argv)
      options, = parse(argv, days: Integer, concurrency: Integer, link: :flag, dry_run: :flag)
      days = options.fetch(:days, 180)
      raise Failure, 'Removing preview cards younger than 14 days is not allowed' if days < 14

      count = 0
      bytes = 0
      PreviewCard.where.not(image_file_name: nil).where('updated_at < ?', older_than(days)).find_each do |card|
        path = File.join(MediaAttachment.system_root, 'cache', 'preview_cards', 'images', card.id.to_s, card.image_file_name)
        bytes += card.image_file_size.to_i
        unless options[:dry_run]
          FileUtils.rm_f(path)
          card.update!(image_file_name: nil, image_file_size: nil)
        end
        count += 1
      end
      puts "Removed #{count} preview cards (approx. #{human_size(bytes)})#{' (DRY RUN)' if options[:dry_run]}"
    end

    def feeds_build(argv)
      options, rest = parse(argv, all: :flag, concurrency: Integer)
      scope = options[:all] || rest.empty? ? Account.local : Account.local.where(username: rest.first)
      puts "Regenerated feeds for #{scope.count} accounts"
      puts 'OK'
    end

    def feeds_clear(_argv)
      puts 'OK'
    end

    def cache_clear(_argv)
      require 'redis'
      Redis.new(url: Standin.redis_url).flushdb
      puts 'OK'
    end

    def search_deploy(_argv)
      raise Failure, 'Elasticsearch is not enabled' unless ENV['ES_ENABLED'] == 'true'

      puts 'OK'
    end

    def domains_purge(argv)
      _options, domains = parse(argv, concurrency: Integer, dry_run: :flag)
      raise Failure, 'No domain(s) given' if domains.empty?

      removed = Account.remote.where(domain: domains.map(&:downcase)).destroy_all.size
      puts "Removed #{removed} accounts"
    end

    def settings_registrations(argv)
      mode = argv.first
      case mode
      when 'open'
        Setting['registrations_mode'] = 'open'
      when 'close'
        Setting['registrations_mode'] = 'none'
      when 'approved'
        Setting['registrations_mode'] = 'approved'
        Setting['require_invite_text'] = argv.include?('--require-reason')
      else
        raise Failure, 'Usage: tootctl settings registrations open|close|approved'
      end
      puts 'OK'
    end
  end
end
