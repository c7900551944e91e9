% rebase('layout', title='Region')
% include('steps')
<h1>Region</h1>
<p>The country sets the analog lines' tones, ring cadence, caller-ID standard and line impedance.</p>
<form method="post" action="/setup/region" novalidate>
<input type="hidden" name="csrf" value="{{csrf}}">
<label for="region">Country
<select id="region" name="region"{{!' aria-invalid="true" aria-describedby="region-error"' if errors.get('region') else ''}}>
<option value="">Choose…</option>
% for code, label in regions:
<option value="{{code}}"{{!' selected' if form.get('region') == code else ''}}>{{label}}</option>
% end
</select>
% if errors.get('region'):
<small id="region-error" class="field-error">{{errors['region']}}</small>
% end
</label>
<h2>Network</h2>
% if net:
<p>You reached the box at <strong>{{browsed}}</strong>.
% for i in net['interfaces']:
% if i['name'] != 'lo':
<span class="muted">{{i['name']}}: {{', '.join('%s/%s' % (a['address'], a['prefix']) for a in i['addresses']) or 'no address'}}.</span>
% end
% end
</p>
% end
<fieldset>
<label><input type="radio" name="net" value="dhcp"{{!' checked' if form.get('net', 'dhcp') != 'static' else ''}}> Keep the address the network gives it (DHCP)</label>
<label><input type="radio" name="net" value="static" id="net-static"{{!' checked' if form.get('net') == 'static' else ''}}> A fixed address, so phones always find the box</label>
</fieldset>
<fieldset class="row">
% include('field', name='interface', label='Interface', value=form.get('interface', ''), error=errors.get('interface'), attrs='placeholder="eth0"')
% include('field', name='address', label='Address', value=form.get('address', ''), error=errors.get('address'), attrs='inputmode="decimal" placeholder="192.168.1.20"')
% include('field', name='prefix', label='Prefix length', value=form.get('prefix', '24'), error=errors.get('prefix'), attrs='inputmode="numeric"')
% include('field', name='gateway', label='Gateway', value=form.get('gateway', ''), error=errors.get('gateway'), attrs='inputmode="decimal"')
</fieldset>
<h2>Analog ports</h2>
% if ports:
<ul id="wizard-ports">
% for p in ports:
<li>{{p['port']}}: {{'a phone socket (FXS)' if p['kind'] == 'fxs' else 'a line socket (FXO)'}}{{', extension ' + p['number'] if p.get('number') else ''}}{{', calls go to ' + p['inbound'] if p.get('inbound') else ''}}</li>
% end
</ul>
<p class="muted">Assign them on the Ports page after the wizard.</p>
% elif ports is None:
<p class="muted">The box is not answering; its analog ports show once it runs.</p>
% else:
<p class="muted">No analog board found (set <code>analog.driver</code> on the Settings page if one is fitted).</p>
% end
<button type="submit">Next</button>
</form>
