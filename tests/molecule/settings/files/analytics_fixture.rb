# frozen_string_literal: true

# The course the analytics scenario reads (bin/rails runner, as the mastodon user): #Bio101 over
# the last hours, through the stand-in's tables.
#   ada_optin      local, profile field "Course analytics: opt-in"   -> appears as @ada_optin
#   bruno_private  local, no opt-in (display name "Bruno Keepsprivate") -> a pseudonym only
#   rita           remote (elsewhere.example), opt-in field             -> a pseudonym (not ours)
#   learner01..45  local, no opt-in: 45 favourites on one post, more than one page of 40
# Public: s1 (ada, #Bio101), s2 (bruno replies to s1, mentions ada), s3 (rita replies to s2),
# s5 (bruno, #Bio101), s6 (ada replies to s5). Private: s4 (bruno replies to s1), never collected.
# s1 is favourited by bruno and rita and boosted by bruno. Prints one JSON line of what it made.
require 'json'

def snowflake(moment, sequence)
  ((moment.to_f * 1000).floor << 16) | sequence
end

def local(username, display, opt_in: false)
  account = Account.find_local(username) || Account.create!(username: username, display_name: display)
  account.update!(fields: opt_in ? [{ 'name' => 'Course analytics', 'value' => 'opt-in' }] : [])
  account.user || User.create!(account: account, email: "#{username}@example-university.edu",
                               confirmed_at: Time.now.utc, approved: true, password: SecureRandom.hex(16))
  account
end

ada = local('ada_optin', 'Ada Optedin', opt_in: true)
bruno = local('bruno_private', 'Bruno Keepsprivate')
rita = Account.find_remote('rita', 'elsewhere.example') ||
       Account.create!(username: 'rita', domain: 'elsewhere.example', display_name: 'Rita Remotely',
                       url: 'https://elsewhere.example/@rita')
rita.update!(fields: [{ 'name' => 'Course analytics', 'value' => 'opt-in' }])
learners = (1..45).map { |n| local(format('learner%02d', n), format('Learner Number%02d', n)) }
tag = Tag.find_or_create_normalized!('Bio101')

start = Time.now.utc.beginning_of_hour - 3.hours
made = {}
post = lambda do |key, minutes, account, text, visibility: 0, reply_to: nil, tagged: false, mentions: []|
  moment = start + minutes.minutes
  status = Status.find_by(id: snowflake(moment, minutes)) ||
           Status.create!(id: snowflake(moment, minutes), account: account, text: text, visibility: visibility,
                          in_reply_to_id: reply_to&.id, created_at: moment, updated_at: moment)
  status.tags << tag if tagged && !status.tags.include?(tag)
  mentions.each { |who| Mention.find_or_create_by!(status: status, account: who) }
  made[key] = status
end

s1 = post.call(:s1, 0, ada, 'Welcome to #Bio101!', tagged: true)
s2 = post.call(:s2, 10, bruno, '@ada_optin thanks, glad to be here', reply_to: s1, mentions: [ada])
post.call(:s3, 20, rita, 'Hello from elsewhere', reply_to: s2)
post.call(:s4, 25, bruno, 'A private aside', visibility: 2, reply_to: s1)
s5 = post.call(:s5, 40, bruno, 'A question for #Bio101', tagged: true)
post.call(:s6, 50, ada, 'Good question', reply_to: s5)
[bruno, rita].each { |who| Favourite.find_or_create_by!(account: who, status: s1) }
learners.each { |who| Favourite.find_or_create_by!(account: who, status: s5) }
Status.find_by(account: bruno, reblog_of_id: s1.id) ||
  Status.create!(id: snowflake(start + 30.minutes, 30), account: bruno, reblog_of_id: s1.id, text: '', visibility: 0)

puts JSON.generate(made.transform_values { |status| status.id.to_s }.merge('favourites_on_s5' => s5.favourites.count))
