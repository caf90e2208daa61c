# frozen_string_literal: true

# Stand-in migration shipped with v4.5.0 (pre-deployment).
class AddQuotePolicyToStatuses < ActiveRecord::Migration[6.1]
  def change
    add_column :statuses, :quote_approval_policy, :integer, null: false, default: 0
  end
end
