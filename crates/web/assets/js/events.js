// Server-sent events from /api/events, read with fetch rather than EventSource so that the
// bearer token can be sent as a header (EventSource cannot send headers). Reconnects with
// backoff and resumes from the last event id.

import { authHeaders } from './api.js';

/**
 * Opens the stream. `onEvent(type, data)` gets each event's parsed JSON; `onState(state)` gets
 * 'connecting', 'live', 'retrying' or 'unauthorized'. Returns a function that closes it.
 */
export function openEvents(path, onEvent, onState) {
  let closed = false;
  let lastId = null;
  let delay = 1000;
  let controller = null;

  async function connect() {
    while (!closed) {
      onState('connecting');
      controller = new AbortController();
      try {
        const headers = { ...authHeaders(), Accept: 'text/event-stream' };
        if (lastId !== null) headers['Last-Event-ID'] = lastId;
        const response = await fetch(path, {
          headers,
          credentials: 'same-origin',
          cache: 'no-store',
          signal: controller.signal,
        });
        if (response.status === 401) {
          onState('unauthorized');
          return;
        }
        if (!response.ok || !response.body) throw new Error(`status ${response.status}`);
        onState('live');
        delay = 1000;
        await read(response.body, (event) => {
          if (event.id !== null) lastId = event.id;
          if (typeof event.retry === 'number') delay = event.retry;
          let data = event.data;
          try {
            data = JSON.parse(event.data);
          } catch {
            // Keep the text.
          }
          onEvent(event.type, data);
        });
      } catch (err) {
        if (closed) return;
        console.debug('event stream interrupted', err);
      }
      if (closed) return;
      onState('retrying');
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 30000);
    }
  }

  connect();
  return () => {
    closed = true;
    if (controller) controller.abort();
  };
}

/** Parses the text/event-stream format (HTML Living Standard, "server-sent events"). */
async function read(body, dispatch) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = { type: 'message', data: [], id: null, retry: null };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let nl;
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, nl);
      const width = buffer.startsWith('\r\n', nl) ? 2 : 1;
      buffer = buffer.slice(nl + width);
      if (line === '') {
        if (event.data.length > 0) {
          dispatch({ ...event, data: event.data.join('\n') });
        }
        event = { type: 'message', data: [], id: event.id, retry: null };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let val = colon < 0 ? '' : line.slice(colon + 1);
      if (val.startsWith(' ')) val = val.slice(1);
      if (field === 'event') event.type = val;
      else if (field === 'data') event.data.push(val);
      else if (field === 'id' && !val.includes('\0')) event.id = val;
      else if (field === 'retry' && /^\d+$/.test(val)) event.retry = Number(val);
    }
    if (buffer.length > 1 << 20) throw new Error('event line too long');
  }
}
