// The numcheck API as the dashboard uses it. Every call sends the key in `X-API-Key`; every
// failure becomes an ApiError carrying the server's stable `error` code and its `message`.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

const NETWORK_MESSAGE = 'Cannot reach the server. Check the connection and try again.';

/** Turns a response status and body text into data, or throws the server's error. */
function decode(status, statusText, text) {
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (status < 200 || status >= 300) {
    const code = data && typeof data.error === 'string' ? data.error : `http_${status}`;
    const message = data && typeof data.message === 'string' && data.message
      ? data.message
      : `The server answered ${status} ${statusText || ''}`.trim();
    throw new ApiError(status, code, message);
  }
  if (data === null || typeof data !== 'object') {
    throw new ApiError(status, 'invalid_response', 'The server sent an answer this page cannot read.');
  }
  return data;
}

async function call(key, method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: { 'X-API-Key': key, Accept: 'application/json' },
      body,
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError(0, 'network_error', NETWORK_MESSAGE);
  }
  const text = await response.text().catch(() => '');
  return decode(response.status, response.statusText, text);
}

const enc = encodeURIComponent;

/** The calls, bound to one key. */
export function client(key) {
  return {
    balance: () => call(key, 'GET', '/v1/balance'),
    tasks: (cursor, limit = 20) => {
      const query = new URLSearchParams({ limit: String(limit) });
      if (cursor) query.set('cursor', cursor);
      return call(key, 'GET', `/v1/tasks?${query}`);
    },
    task: (id) => call(key, 'GET', `/v1/tasks/${enc(id)}`),
    rows: (id, limit = 50) => call(key, 'GET', `/v1/tasks/${enc(id)}/rows?limit=${limit}`),
    callbackSecret: () => call(key, 'GET', '/v1/callback-secret'),
    rotateCallbackSecret: () => call(key, 'POST', '/v1/callback-secret/rotate'),
    cancel: (id) => call(key, 'POST', `/v1/tasks/${enc(id)}/cancel`),
    remove: (id) => call(key, 'DELETE', `/v1/tasks/${enc(id)}`),
    preview: (file, sheet) => {
      const form = new FormData();
      if (sheet) form.append('sheet', sheet);
      form.append('file', file, file.name);
      return call(key, 'POST', '/v1/tasks/preview', form);
    },
    /** `POST /v1/tasks` through XHR, the one browser API that reports upload progress. */
    create: (form, onProgress) => new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', '/v1/tasks');
      xhr.setRequestHeader('X-API-Key', key);
      xhr.setRequestHeader('Accept', 'application/json');
      xhr.responseType = 'text';
      xhr.upload.addEventListener('progress', (event) => {
        if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
      });
      xhr.addEventListener('load', () => {
        try {
          resolve(decode(xhr.status, xhr.statusText, xhr.responseText));
        } catch (error) {
          reject(error);
        }
      });
      xhr.addEventListener('error', () => reject(new ApiError(0, 'network_error', NETWORK_MESSAGE)));
      xhr.addEventListener('abort', () => reject(new ApiError(0, 'aborted', 'The upload was stopped.')));
      xhr.send(form);
    }),
  };
}
