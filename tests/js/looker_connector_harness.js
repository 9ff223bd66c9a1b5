// Runs connectors/looker_studio/Code.gs under Node with stand-ins for the Apps Script services it uses
// (DataStudioApp, UrlFetchApp via curl, PropertiesService, Session), then calls the connector's
// functions listed in a JSON file and prints their results as JSON.
// usage: node looker_connector_harness.js <Code.gs> <endpoint url> <requests.json>
'use strict';
const fs = require('fs');
const vm = require('vm');
const {execFileSync} = require('child_process');

const [codePath, endpoint, requestsPath] = process.argv.slice(2);
const stores = {script: {ENDPOINT_URL: endpoint, ADMIN_EMAILS: 'finance@example.com, ops@example.com'}, user: {}};
const fetches = [];

function properties(store) {
  return {
    getProperty: (k) => (Object.prototype.hasOwnProperty.call(store, k) ? store[k] : null),
    setProperty: (k, v) => { store[k] = String(v); },
    deleteProperty: (k) => { delete store[k]; },
  };
}

const UrlFetchApp = {
  fetch(url, options) {
    options = options || {};
    const method = (options.method || 'get').toUpperCase();
    fetches.push({url, method, payload: options.payload ? JSON.parse(options.payload) : null});
    const args = ['-s', '-o', '-', '-w', '\n%{http_code}', '-X', method, url];
    for (const [name, value] of Object.entries(options.headers || {})) args.push('-H', `${name}: ${value}`);
    if (options.payload !== undefined) {
      args.push('-H', `Content-Type: ${options.contentType || 'application/json'}`, '--data-binary', options.payload);
    }
    const out = execFileSync('curl', args, {maxBuffer: 1 << 28}).toString('utf8');
    const cut = out.lastIndexOf('\n');
    const body = out.slice(0, cut);
    const code = parseInt(out.slice(cut + 1), 10);
    if (code >= 400 && !options.muteHttpExceptions) throw new Error(`Request failed with code ${code}`);
    return {getResponseCode: () => code, getContentText: () => body};
  },
};

function builder(target, methods) {
  const b = {};
  for (const [name, key] of Object.entries(methods)) {
    b[name] = (v) => { target[key] = v; return b; };
  }
  return b;
}

const DataStudioApp = {
  createCommunityConnector() {
    return {
      AuthType: {NONE: 'NONE', KEY: 'KEY', USER_TOKEN: 'USER_TOKEN', USER_PASS: 'USER_PASS', OAUTH2: 'OAUTH2'},
      newAuthTypeResponse() {
        const out = {};
        const b = builder(out, {setAuthType: 'type', setHelpUrl: 'helpUrl'});
        b.build = () => out;
        return b;
      },
      newUserError() {
        const out = {};
        const b = builder(out, {setText: 'text', setDebugText: 'debugText'});
        b.throwException = () => { const e = new Error(out.text); e.userError = out; throw e; };
        return b;
      },
      getConfig() {
        const config = {configParams: []};
        const api = {
          newInfo() { const f = {type: 'INFO'}; config.configParams.push(f); return builder(f, {setId: 'name', setText: 'text'}); },
          newTextInput() {
            const f = {type: 'TEXTINPUT'}; config.configParams.push(f);
            return builder(f, {setId: 'name', setName: 'displayName', setHelpText: 'helpText'});
          },
          newSelectSingle() {
            const f = {type: 'SELECT_SINGLE', options: []}; config.configParams.push(f);
            const b = builder(f, {setId: 'name', setName: 'displayName', setHelpText: 'helpText'});
            b.addOption = (o) => { f.options.push(o.build ? o.build() : o); return b; };
            return b;
          },
          newOptionBuilder() {
            const o = {};
            const b = builder(o, {setLabel: 'label', setValue: 'value'});
            b.build = () => o;
            return b;
          },
          setDateRangeRequired(v) { config.dateRangeRequired = v; return api; },
          build() { return config; },
        };
        return api;
      },
    };
  },
};

const context = vm.createContext({
  DataStudioApp, UrlFetchApp,
  PropertiesService: {getScriptProperties: () => properties(stores.script), getUserProperties: () => properties(stores.user)},
  Session: {getEffectiveUser: () => ({getEmail: () => 'finance@example.com'})},
  JSON, Math, Object, Array, String, Number, Error,
});
vm.runInContext(fs.readFileSync(codePath, 'utf8'), context, {filename: 'Code.gs'});

const results = [];
for (const call of JSON.parse(fs.readFileSync(requestsPath, 'utf8'))) {
  const before = fetches.length;
  try {
    const value = context[call.fn](call.request);
    results.push({fn: call.fn, value: value === undefined ? null : value, fetches: fetches.slice(before)});
  } catch (e) {
    results.push({fn: call.fn, error: e.message, fetches: fetches.slice(before)});
  }
}
process.stdout.write(JSON.stringify(results));
