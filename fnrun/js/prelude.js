// The JavaScript half of the runtime's globals. It runs once in every fresh
// runtime with `host`, the Go primitives, and returns { run }. Nothing here
// may reach the filesystem, the process or the environment: host offers none.
(function (host) {
  'use strict';
  const g = globalThis;
  const RESPONSE = Symbol('cairn.response');

  // ---- formatting for log / console ----
  function fmtOne(v) {
    if (typeof v === 'string') return v;
    if (v instanceof Error) return v.stack || String(v);
    if (v === undefined) return 'undefined';
    if (typeof v === 'function') return '[Function: ' + (v.name || '(anonymous)') + ']';
    if (typeof v === 'symbol' || typeof v === 'bigint') return v.toString();
    if (typeof v === 'object' && v !== null) {
      if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
        return (v.constructor && v.constructor.name) + '(' + v.byteLength + ')';
      }
      if (v instanceof Map) return 'Map(' + v.size + ') ' + safeJSON([...v.entries()]);
      if (v instanceof Set) return 'Set(' + v.size + ') ' + safeJSON([...v.values()]);
      return safeJSON(v);
    }
    return String(v);
  }
  function safeJSON(v) {
    try {
      const s = JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? x.toString() : x));
      return s === undefined ? String(v) : s;
    } catch (e) {
      return String(v);
    }
  }
  function format(args) {
    let s = '';
    for (let i = 0; i < args.length; i++) s += (i ? ' ' : '') + fmtOne(args[i]);
    return s;
  }
  const log = (...a) => host.log(format(a));
  const error = (...a) => host.error(format(a));
  g.console = {
    log, info: log, debug: log, trace: log, dir: log,
    warn: error, error,
    assert(cond, ...a) { if (!cond) error('Assertion failed' + (a.length ? ': ' + format(a) : '')); },
  };

  // ---- timers ----
  function timer(repeat) {
    return function (fn, ms, ...args) {
      if (typeof fn !== 'function') throw new TypeError('The "callback" argument must be of type function');
      return host.setTimer(args.length ? () => fn(...args) : fn, Number(ms) || 0, repeat);
    };
  }
  const clear = (id) => { if (typeof id === 'number') host.clearTimer(id); };
  g.setTimeout = timer(false);
  g.setInterval = timer(true);
  g.setImmediate = (fn, ...args) => g.setTimeout(fn, 0, ...args);
  g.clearTimeout = g.clearInterval = g.clearImmediate = clear;
  g.queueMicrotask = (fn) => { Promise.resolve().then(fn); };
  const t0 = Date.now();
  g.performance = { timeOrigin: t0, now: () => Date.now() - t0 };

  // ---- encoding ----
  function bytesOf(v, what) {
    if (v instanceof ArrayBuffer) return new Uint8Array(v);
    if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    throw new TypeError('The "' + what + '" argument must be an ArrayBuffer or ArrayBufferView');
  }
  class TextEncoder {
    get encoding() { return 'utf-8'; }
    encode(s = '') { return new Uint8Array(host.utf8Encode(String(s))); }
    encodeInto(s, dest) {
      s = String(s);
      let read = 0, written = 0;
      for (const ch of s) {
        const cp = ch.codePointAt(0);
        const n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        if (written + n > dest.length) break;
        written += n;
        read += ch.length;
      }
      dest.set(this.encode(s.slice(0, read)));
      return { read, written };
    }
  }
  class TextDecoder {
    constructor(label = 'utf-8', options = {}) {
      const l = String(label).trim().toLowerCase();
      if (l !== 'utf-8' && l !== 'utf8' && l !== 'unicode-1-1-utf-8') {
        throw new RangeError('The "' + label + '" encoding is not supported');
      }
      this._fatal = !!(options && options.fatal);
      this._ignoreBOM = !!(options && options.ignoreBOM);
    }
    get encoding() { return 'utf-8'; }
    get fatal() { return this._fatal; }
    get ignoreBOM() { return this._ignoreBOM; }
    decode(input) {
      if (input === undefined || input === null) return '';
      return host.utf8Decode(bytesOf(input, 'input'), this._fatal, this._ignoreBOM);
    }
  }
  g.TextEncoder = TextEncoder;
  g.TextDecoder = TextDecoder;
  g.atob = (s) => host.atob(String(s));
  g.btoa = (s) => host.btoa(String(s));

  // ---- crypto ----
  const intArrays = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array];
  if (typeof BigInt64Array === 'function') intArrays.push(BigInt64Array, BigUint64Array);
  g.crypto = {
    randomUUID: () => host.randomUUID(),
    getRandomValues(a) {
      if (!intArrays.some((T) => a instanceof T)) {
        throw new TypeError('The data argument must be an integer-type TypedArray');
      }
      if (a.byteLength > 65536) {
        const e = new Error('The ArrayBufferView\'s byte length (' + a.byteLength + ') exceeds the number of bytes of entropy available via this API (65536)');
        e.name = 'QuotaExceededError';
        throw e;
      }
      host.fillRandom(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
      return a;
    },
  };

  // ---- fetch ----
  class Headers {
    constructor(init) {
      this._m = new Map();
      if (init === undefined || init === null) return;
      if (typeof init[Symbol.iterator] === 'function') {
        for (const pair of init) {
          if (!pair || pair.length !== 2) throw new TypeError('Header pairs must contain exactly two items');
          this.append(pair[0], pair[1]);
        }
      } else if (typeof init === 'object') {
        for (const k of Object.keys(init)) this.append(k, init[k]);
      }
    }
    append(k, v) {
      k = String(k).toLowerCase();
      const a = this._m.get(k);
      if (a) a.push(String(v)); else this._m.set(k, [String(v)]);
    }
    set(k, v) { this._m.set(String(k).toLowerCase(), [String(v)]); }
    get(k) { const a = this._m.get(String(k).toLowerCase()); return a ? a.join(', ') : null; }
    getSetCookie() { return (this._m.get('set-cookie') || []).slice(); }
    has(k) { return this._m.has(String(k).toLowerCase()); }
    delete(k) { this._m.delete(String(k).toLowerCase()); }
    forEach(cb, thisArg) { for (const [k, v] of this.entries()) cb.call(thisArg, v, k, this); }
    *entries() { for (const k of [...this._m.keys()].sort()) yield [k, this._m.get(k).join(', ')]; }
    *keys() { for (const [k] of this.entries()) yield k; }
    *values() { for (const [, v] of this.entries()) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    _pairs() {
      const out = [];
      for (const [k, vs] of this._m) for (const v of vs) out.push([k, v]);
      return out;
    }
  }

  // A body is kept as a string or an ArrayBuffer.
  function normalizeBody(body) {
    if (body === undefined || body === null) return null;
    if (typeof body === 'string') return body;
    if (body instanceof ArrayBuffer) return body;
    if (ArrayBuffer.isView(body)) return body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength);
    return String(body);
  }

  class Response {
    constructor(body = null, init = {}) {
      init = init || {};
      if (typeof URLSearchParams === 'function' && body instanceof URLSearchParams) {
        init = Object.assign({}, init, { headers: new Headers(init.headers) });
        if (!init.headers.has('content-type')) init.headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
      }
      this._body = normalizeBody(body);
      this.status = init.status === undefined ? 200 : Number(init.status);
      this.statusText = init.statusText === undefined ? '' : String(init.statusText);
      this.headers = new Headers(init.headers);
      if (typeof this._body === 'string' && !this.headers.has('content-type')) {
        this.headers.set('content-type', 'text/plain;charset=UTF-8');
      }
      this.url = '';
      this.redirected = false;
      this.type = 'default';
      this.bodyUsed = false;
    }
    get ok() { return this.status >= 200 && this.status < 300; }
    _take() {
      if (this.bodyUsed) return Promise.reject(new TypeError('Body has already been consumed'));
      this.bodyUsed = true;
      return Promise.resolve(this._body);
    }
    text() {
      return this._take().then((b) => (b === null ? '' : typeof b === 'string' ? b : host.utf8Decode(new Uint8Array(b), false, false)));
    }
    json() { return this.text().then((s) => JSON.parse(s)); }
    arrayBuffer() {
      return this._take().then((b) => (b === null ? new ArrayBuffer(0) : typeof b === 'string' ? host.utf8Encode(b) : b.slice(0)));
    }
    bytes() { return this.arrayBuffer().then((b) => new Uint8Array(b)); }
    clone() {
      if (this.bodyUsed) throw new TypeError('Response body has already been consumed');
      const r = new Response(null, { status: this.status, statusText: this.statusText, headers: this.headers });
      r._body = this._body;
      r.url = this.url;
      r.redirected = this.redirected;
      r.type = this.type;
      return r;
    }
    static json(data, init = {}) {
      const h = new Headers((init && init.headers) || undefined);
      if (!h.has('content-type')) h.set('content-type', 'application/json');
      return new Response(JSON.stringify(data), Object.assign({}, init, { headers: h }));
    }
    static error() { const r = new Response(null, { status: 0 }); r.type = 'error'; return r; }
    static redirect(url, status = 302) { return new Response(null, { status, headers: { location: String(url) } }); }
  }

  g.Headers = Headers;
  g.Response = Response;
  g.fetch = function fetch(input, init) {
    try {
      init = init || {};
      let url, method = 'GET', headers = new Headers(), body = null;
      if (input && typeof input === 'object' && !(typeof URL === 'function' && input instanceof URL) && 'url' in input) {
        url = String(input.url);
        if (input.method) method = String(input.method);
        if (input.headers) headers = new Headers(input.headers);
        if (input.body !== undefined) body = input.body;
      } else {
        url = String(input);
      }
      if (init.method) method = String(init.method);
      method = method.toUpperCase();
      if (init.headers) headers = new Headers(init.headers);
      if (init.body !== undefined && init.body !== null) body = init.body;
      if (typeof URLSearchParams === 'function' && body instanceof URLSearchParams && !headers.has('content-type')) {
        headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
      }
      body = normalizeBody(body);
      if (typeof body === 'string' && !headers.has('content-type')) headers.set('content-type', 'text/plain;charset=UTF-8');
      if (body !== null && (method === 'GET' || method === 'HEAD')) {
        throw new TypeError('Request with GET/HEAD method cannot have body.');
      }
      const redirect = init.redirect === undefined ? 'follow' : String(init.redirect);
      return host.fetch(url, method, headers._pairs(), body, redirect).then((raw) => {
        const r = new Response(null, { status: raw.status, statusText: raw.statusText, headers: raw.headers });
        r._body = raw.body;
        r.url = raw.url;
        r.redirected = raw.redirected;
        r.type = 'basic';
        return r;
      });
    } catch (e) {
      return Promise.reject(e);
    }
  };

  // ---- the execution ----
  function makeRes(state) {
    function mk(body, statusCode, headers, defaults) {
      const h = Object.assign({}, defaults || {});
      if (headers && typeof headers === 'object') {
        // An array is several field lines (two Set-Cookie); "\n" separates
        // them in the one string a header maps to (fnrun.Response.Headers).
        for (const k of Object.keys(headers)) {
          const v = headers[k];
          h[k.toLowerCase()] = Array.isArray(v) ? v.map(String).join('\n') : String(v);
        }
      }
      const r = { body: normalizeBody(body) === null ? '' : normalizeBody(body), statusCode: Number(statusCode), headers: h };
      Object.defineProperty(r, RESPONSE, { value: true });
      state.last = r;
      return r;
    }
    return {
      send: (body = '', statusCode = 200, headers = {}) => mk(body, statusCode, headers),
      text: (body = '', statusCode = 200, headers = {}) =>
        mk(String(body), statusCode, headers, { 'content-type': 'text/plain; charset=utf-8' }),
      json: (obj, statusCode = 200, headers = {}) => {
        const s = JSON.stringify(obj);
        return mk(s === undefined ? '' : s, statusCode, headers, { 'content-type': 'application/json' });
      },
      binary: (bytes, statusCode = 200, headers = {}) =>
        mk(bytes, statusCode, headers, { 'content-type': 'application/octet-stream' }),
      empty: () => mk('', 204, {}),
      redirect: (url, statusCode = 301, headers = {}) =>
        mk('', statusCode, Object.assign({}, headers, { location: String(url) })),
    };
  }

  function makeReq(i) {
    const req = {
      method: i.method,
      scheme: i.scheme,
      host: i.host,
      port: i.port,
      path: i.path,
      url: i.url,
      query: i.query,
      queryString: i.queryString,
      headers: i.headers,
      body: i.body,
      bodyText: i.body,
      bodyRaw: i.body,
      trigger: i.trigger,
      eventNames: i.eventNames,
      event: null,
    };
    if (i.event) {
      try { req.event = JSON.parse(i.event); } catch (e) { req.event = null; }
    }
    let json, parsed = false, binary;
    Object.defineProperty(req, 'bodyJson', {
      enumerable: true,
      get() {
        if (!parsed) {
          json = i.body.trim() === '' ? {} : JSON.parse(i.body);
          parsed = true;
        }
        return json;
      },
    });
    Object.defineProperty(req, 'bodyBinary', {
      enumerable: true,
      get() {
        if (binary === undefined) binary = new Uint8Array(host.bodyBytes());
        return binary;
      },
    });
    return req;
  }

  async function run(mod, i) {
    const exp = mod.exports;
    const fn = typeof exp === 'function' ? exp : exp && typeof exp.default === 'function' ? exp.default : null;
    if (!fn) {
      throw new TypeError('the code exports no function: export default async ({ req, res, log, error }) => { ... }');
    }
    const state = { last: null };
    const ctx = {
      req: makeReq(i),
      res: makeRes(state),
      log,
      error,
      env: g.process.env,
      variables: g.process.env,
      projectId: i.projectId,
      functionId: i.functionId,
      deploymentId: i.deploymentId,
      executionId: i.executionId,
      apiEndpoint: i.apiEndpoint,
      apiKey: i.apiKey,
      userJwt: i.userJwt,
    };
    const out = await fn(ctx);
    if (out && out[RESPONSE]) return out;
    if (state.last) return state.last;
    throw new Error('the function returned no response: return res.send(), res.json(), res.text(), res.empty() or res.redirect()');
  }

  function setup(env) {
    g.process = {
      env,
      nextTick: (fn, ...args) => { queueMicrotask(() => fn(...args)); },
    };
  }

  return { run, setup };
});
