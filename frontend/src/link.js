// How the feed judges and retries its link (tests/faults run the same rules).

// The page pings every PING_EVERY and the server answers at once (responder/alarms/
// consumers.py); the server also sends a frame at least every 5 s. No frame for
// SILENT_LIMIT is a dead link, even one that drops packets without a word (no FIN, no
// RST): shown as such at once, not "Live" for another 40 s.
export const PING_EVERY = 4000;
export const SILENT_LIMIT = 10000;

// How long to wait before reconnect number `attempt` (0 first), in seconds. Jittered by
// half either way: when a daphne dies, its hundreds of tablets come back spread over a
// second or more, not all in one instant (a thundering herd on the other).
const BACKOFF = [1, 2, 4, 8, 15, 30];

export function reconnectDelay(attempt, random = Math.random) {
  return BACKOFF[Math.min(attempt, BACKOFF.length - 1)] * (0.5 + random());
}
