-- Subset/disjointness of two sets on one server, without sending members back.
-- KEYS[1], KEYS[2]: the sets. Returns {|A - B|, |B - A|, |A ∩ B|}.
return {
  #redis.call('SDIFF', KEYS[1], KEYS[2]),
  #redis.call('SDIFF', KEYS[2], KEYS[1]),
  #redis.call('SINTER', KEYS[1], KEYS[2]),
}
