# frozen_string_literal: true

require 'fileutils'

# Media (stand-in). Local uploads live under public/system/media_attachments/, copies of
# remote media under public/system/cache/media_attachments/ (re-fetchable, not backed up).
class MediaAttachment < ApplicationRecord
  self.inheritance_column = nil

  belongs_to :account, inverse_of: :media_attachments
  belongs_to :status, inverse_of: :media_attachments, optional: true

  scope :local, -> { where(remote_url: '') }
  scope :remote, -> { where.not(remote_url: '') }
  scope :cached, -> { remote.where.not(file_file_name: nil) }

  def self.system_root
    File.join(Standin.root, 'public', 'system')
  end

  def id_partition
    format('%018d', id).scan(/\d{3}/).join('/')
  end

  def relative_path
    prefix = remote_url.present? ? 'cache/media_attachments' : 'media_attachments'
    File.join(prefix, 'files', id_partition, 'original', file_file_name.to_s)
  end

  def path
    File.join(self.class.system_root, relative_path)
  end

  def url
    "/system/#{relative_path}"
  end

  # Store an IO (or a path) as the attachment's file.
  def store!(io, filename, content_type = 'application/octet-stream')
    self.file_file_name = File.basename(filename.to_s).gsub(/[^A-Za-z0-9._-]/, '_')
    self.file_content_type = content_type
    save! if new_record?
    FileUtils.mkdir_p(File.dirname(path))
    File.open(path, 'wb') { |out| IO.copy_stream(io, out) }
    update!(file_file_size: File.size(path))
  end

  def remove_file!
    FileUtils.rm_f(path)
    update!(file_file_name: nil, file_file_size: nil)
  end
end
