/**
 * Looker Studio Community Connector for the finance pipeline's connector endpoint
 * (finance_pipeline/platforms/looker_studio/endpoint.py).
 *
 * Script properties (Project Settings → Script properties):
 *   ENDPOINT_URL   base URL of the endpoint, e.g. https://finance.example.com (no trailing slash)
 *   ADMIN_EMAILS   optional, comma-separated: these users see debug details in errors
 * Auth: KEY — each user enters the endpoint's bearer token (LOOKER_STUDIO_TOKEN); it is kept in
 * their user properties and sent as `Authorization: Bearer <key>`.
 */
var cc = DataStudioApp.createCommunityConnector();
var KEY_PROPERTY = 'finance.endpoint.key';
var PAGE_ROWS = 50000; // rows per getData call to the endpoint (one UrlFetch answer stays well below 50 MB)

function endpointUrl_() {
  var url = PropertiesService.getScriptProperties().getProperty('ENDPOINT_URL');
  if (!url) {
    throwUserError_('The connector is not configured: set the script property ENDPOINT_URL.');
  }
  return url.replace(/\/+$/, '');
}

function throwUserError_(message, debug) {
  cc.newUserError().setText(message).setDebugText(debug || message).throwException();
}

function call_(method, path, body, key) {
  var options = {
    method: method,
    contentType: 'application/json',
    headers: {Authorization: 'Bearer ' + (key || PropertiesService.getUserProperties().getProperty(KEY_PROPERTY))},
    muteHttpExceptions: true
  };
  if (body) {
    options.payload = JSON.stringify(body);
  }
  var response = UrlFetchApp.fetch(endpointUrl_() + path, options);
  var code = response.getResponseCode();
  var text = response.getContentText();
  if (code === 401) {
    throwUserError_('The endpoint refused the key: re-enter it (Edit connection → Reset credentials).');
  }
  if (code !== 200) {
    throwUserError_('The finance endpoint answered ' + code + '.', text.slice(0, 1000));
  }
  return JSON.parse(text);
}

// -- auth ------------------------------------------------------------------------------------------
function getAuthType() {
  return cc.newAuthTypeResponse()
    .setAuthType(cc.AuthType.KEY)
    .setHelpUrl('https://finance.example.com/docs/looker-studio')
    .build();
}

function keyWorks_(key) {
  var response = UrlFetchApp.fetch(endpointUrl_() + '/connector/tables', {
    method: 'get', headers: {Authorization: 'Bearer ' + key}, muteHttpExceptions: true
  });
  return response.getResponseCode() === 200;
}

function isAuthValid() {
  var key = PropertiesService.getUserProperties().getProperty(KEY_PROPERTY);
  return !!key && keyWorks_(key);
}

function setCredentials(request) {
  var key = request.key;
  if (!key || !keyWorks_(key)) {
    return {errorCode: 'INVALID_CREDENTIALS'};
  }
  PropertiesService.getUserProperties().setProperty(KEY_PROPERTY, key);
  return {errorCode: 'NONE'};
}

function resetAuth() {
  PropertiesService.getUserProperties().deleteProperty(KEY_PROPERTY);
}

function isAdminUser() {
  var admins = (PropertiesService.getScriptProperties().getProperty('ADMIN_EMAILS') || '').split(',');
  var me = Session.getEffectiveUser().getEmail();
  return admins.map(function (s) { return s.trim(); }).indexOf(me) >= 0;
}

// -- config, schema, data --------------------------------------------------------------------------
function getConfig(request) {
  var config = cc.getConfig();
  config.newInfo().setId('about')
    .setText('One data source per mart. Amounts are exact to the cent; columns ending in _home are GBP.');
  var table = config.newSelectSingle().setId('table').setName('Mart').setHelpText('The table to read.');
  var listing = call_('get', '/connector/tables');
  listing.tables.forEach(function (t) {
    table.addOption(config.newOptionBuilder().setLabel(t.label + ' (' + t.rows + ' rows)').setValue(t.name));
  });
  config.setDateRangeRequired(true);
  return config.build();
}

function tableOf_(request) {
  var table = request.configParams && request.configParams.table;
  if (!table) {
    throwUserError_('Choose a mart in the data source configuration.');
  }
  return table;
}

function getSchema(request) {
  var answer = call_('post', '/connector/getSchema', {configParams: {table: tableOf_(request)}});
  return {schema: answer.schema};
}

function getData(request) {
  var body = {
    configParams: {table: tableOf_(request)},
    fields: request.fields.map(function (f) { return {name: f.name}; })
  };
  if (request.dateRange && request.dateRange.startDate) {
    body.dateRange = {startDate: request.dateRange.startDate, endDate: request.dateRange.endDate};
  }
  var schema = null;
  var rows = [];
  var start = 1;
  var wanted = request.pagination ? request.pagination.rowCount : null;
  if (request.pagination) {
    start = request.pagination.startRow;
  }
  while (true) {
    var count = wanted === null ? PAGE_ROWS : Math.min(PAGE_ROWS, wanted - rows.length);
    body.pagination = {startRow: start, rowCount: count};
    var page = call_('post', '/connector/getData', body);
    schema = page.schema;
    rows = rows.concat(page.rows);
    start += page.rows.length;
    var done = page.rows.length < count || start > page.totalRows || (wanted !== null && rows.length >= wanted);
    if (done) {
      break;
    }
  }
  return {schema: schema, rows: rows, filtersApplied: false};
}
