# frozen_string_literal: true

# Stand-in post-deployment migration shipped with v4.5.0: drops a column the new code no
# longer reads, so it must only run after every process runs the new release.
class RemoveLegacyLocalOnlyFromStatuses < ActiveRecord::Migration[6.1]
  def change
    remove_column :statuses, :legacy_local_only, :boolean
  end
end
