/** Shape checks for values read from JSON files (internal to eval/). */

export const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** An id from a JSON file in a message: numbers and strings as they are, anything else by its kind (objects can refuse String()). */
export function showId(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  if (typeof v === 'string') return JSON.stringify(v.slice(0, 60));
  return v === undefined ? 'missing' : Array.isArray(v) ? 'an array' : 'an object';
}
