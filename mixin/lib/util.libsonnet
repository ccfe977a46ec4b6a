// Helpers shared by the alerts, the rules and the dashboard: checked durations and numbers,
// and their wording in descriptions.
local unitSeconds = { w: 604800, d: 86400, h: 3600, m: 60, s: 1 };
local unitOrder = ['w', 'd', 'h', 'm', 's'];
local digits = std.set(std.stringChars('0123456789'));

local fail(key, expected, value) =
  error 'convocore-crawler mixin: _config.%s: expected %s, got %s' % [key, expected, std.manifestJsonMinified(value)];

// Seconds in a Prometheus duration of whole units in decreasing order (90s, 15m, 1h30m, 1d).
local parseDuration(key, value) =
  local expected = 'a duration such as 90s, 15m or 1h30m (units w, d, h, m, s)';
  if !std.isString(value) || value == '' then fail(key, expected, value)
  else
    local step(state, char) =
      if std.member(digits, char) then state { number: state.number + char }
      else if std.objectHas(unitSeconds, char) && state.number != ''
              && std.find(char, unitOrder)[0] > state.rank then
        state {
          total: state.total + std.parseInt(state.number) * unitSeconds[char],
          number: '',
          rank: std.find(char, unitOrder)[0],
        }
      else state { bad: true };
    local result = std.foldl(step, std.stringChars(value), { total: 0, number: '', rank: -1, bad: false });
    if result.bad || result.number != '' || result.total == 0 then fail(key, expected, value)
    else result.total;

local plural(n, word) = '%d %s%s' % [n, word, if n == 1 then '' else 's'];

{
  // The duration under _config[key], checked: returned as written, for PromQL.
  duration(config, key)::
    assert parseDuration(key, config[key]) > 0;
    config[key],

  seconds(config, key):: parseDuration(key, config[key]),

  // A duration in words: 3600 -> '1 hour', 5400 -> '1 hour 30 minutes'.
  words(config, key)::
    local total = parseDuration(key, config[key]);
    local parts = [
      [std.floor(total / 86400), 'day'],
      [std.floor(total % 86400 / 3600), 'hour'],
      [std.floor(total % 3600 / 60), 'minute'],
      [total % 60, 'second'],
    ];
    std.join(' ', [plural(p[0], p[1]) for p in parts if p[0] > 0]),

  // A share 0..1, checked: returned as a number.
  ratio(config, key)::
    local value = config[key];
    if std.isNumber(value) && value >= 0 && value <= 1 then value
    else fail(key, 'a number from 0 to 1', value),

  // A number as PromQL and people write it: 0.2 -> '0.2' (std.toString would give
  // 0.20000000000000001), 50000 -> '50000'.
  num(value):: '%.15g' % value,

  // A share as a percentage without trailing zeros: 0.2 -> '20', 0.125 -> '12.5'.
  percent(config, key):: self.num(std.round(self.ratio(config, key) * 10000) / 100),

  // A count or an amount, checked: a number of at least 0.
  amount(config, key)::
    local value = config[key];
    if std.isNumber(value) && value >= 0 then value else fail(key, 'a number of at least 0', value),

  // A non-empty string.
  text(config, key)::
    local value = config[key];
    if std.isString(value) && value != '' then value else fail(key, 'a non-empty string', value),

  // A list of strings.
  texts(config, key)::
    local value = config[key];
    if std.isArray(value) && std.all([std.isString(v) for v in value]) then value
    else fail(key, 'a list of strings', value),

  // The credit budget of every workspace without one of its own: a number, or null for none.
  optionalAmount(config, key)::
    if config[key] == null then null else self.amount(config, key),

  // An object of amounts by name.
  amounts(config, key)::
    local value = config[key];
    if std.isObject(value) && std.all([std.isNumber(value[k]) && value[k] >= 0 for k in std.objectFields(value)])
    then value
    else fail(key, 'an object of numbers of at least 0 by workspace id', value),

  // Text written over several lines, read as one line (what YAML's `>-` does).
  oneLine(text):: std.join(' ', [line for line in std.split(text, '\n') if line != '']),
}
