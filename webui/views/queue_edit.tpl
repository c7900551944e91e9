% rebase('layout', title='Queue ' + (form['id'] or 'new'))
<link rel="stylesheet" href="{{css}}">
<p><a href="/queues">← Queues</a></p>
<h1>{{'New queue' if is_new else 'Queue ' + ident}}</h1>
% if live:
<p class="muted" id="queue-live">Now: {{len(live['waiting'])}} caller(s) waiting, longest {{'%g' % live['longest_wait']}} s; agents {{', '.join('%s %s' % (a, s.replace('_', ' ')) for a, s in live['agents'].items()) or 'none'}}.</p>
% end
% if get('failed'):
<p class="form-error failed" id="failed" role="alert">{{failed}}</p>
% end
% if errors.get('form'):
<p class="form-error" id="form-error">{{errors['form']}}</p>
% end
<form method="post" action="/queues/{{ident}}" novalidate id="queue-form" class="config">
<input type="hidden" name="csrf" value="{{csrf}}">
% include('ivr_targets', targets=targets)
<fieldset class="row">
% include('field', name='id', label='Queue id', value=form['id'], error=errors.get('id'), attrs='placeholder="sales" autocapitalize="off"')
% include('field', name='number', label='Number callers dial', value=form['number'], error=errors.get('number'), attrs='inputmode="numeric" placeholder="600"')
% include('field', name='name', label='Name', value=form['name'], error=errors.get('name'), attrs='placeholder="Sales"')
<label for="strategy">Strategy
<select id="strategy" name="strategy"{{!' aria-invalid="true" aria-describedby="strategy-error"' if errors.get('strategy') else ''}}>
% for s in strategies:
<option value="{{s}}"{{!' selected' if form['strategy'] == s else ''}}>{{s}}</option>
% end
</select>
% if errors.get('strategy'):
<small id="strategy-error" class="field-error">{{errors['strategy']}}</small>
% else:
<small>who is offered a waiting call</small>
% end
</label>
</fieldset>

<fieldset id="agents">
<legend><strong>Agents</strong></legend>
<p class="muted">A <em>member</em> is always logged in (may pause); an <em>agent</em> logs in and out from the desk phone. Skills as <code>french=3, billing=1</code> for the skills strategy.</p>
% if errors.get('agents'):
<small id="agents-error" class="field-error">{{errors['agents']}}</small>
% end
<div class="scroll">
<table class="agent-rows" id="agent-table">
<thead><tr><th>Extension</th><th>Kind</th><th>Skills</th></tr></thead>
<tbody>
% for i, (agent, role, skills) in enumerate(form['agents']):
% fid = 'agent-%d' % i
<tr id="{{fid}}">
<td><input name="{{fid}}-agent" id="{{fid}}-agent" value="{{agent}}" list="agent-names" inputmode="numeric" aria-label="extension of agent {{i + 1}}"{{!' aria-invalid="true" aria-describedby="%s-agent-error"' % fid if errors.get(fid + '-agent') else ''}}>
% if errors.get(fid + '-agent'):
<small id="{{fid}}-agent-error" class="field-error">{{errors[fid + '-agent']}}</small>
% end
</td>
<td><select name="{{fid}}-role" id="{{fid}}-role" aria-label="kind of agent {{i + 1}}">
<option value="agent"{{!' selected' if role != 'member' else ''}}>agent (logs in)</option>
<option value="member"{{!' selected' if role == 'member' else ''}}>member (always in)</option>
</select></td>
<td><input name="{{fid}}-skills" id="{{fid}}-skills" value="{{skills}}" aria-label="skills of agent {{i + 1}}"{{!' aria-invalid="true" aria-describedby="%s-skills-error"' % fid if errors.get(fid + '-skills') else ''}}>
% if errors.get(fid + '-skills'):
<small id="{{fid}}-skills-error" class="field-error">{{errors[fid + '-skills']}}</small>
% end
</td>
</tr>
% end
</tbody>
</table>
</div>
<datalist id="agent-names">
% for n in targets['extension']:
<option value="{{n}}"></option>
% end
</datalist>
<input type="hidden" name="agent-rows" value="{{len(form['agents'])}}">
</fieldset>

% for legend, fields in groups:
<fieldset class="group" id="group-{{legend.split()[0].lower()}}">
<legend><strong>{{legend}}</strong></legend>
<div class="grid">
% for key, label, hint in fields:
% if key in booleans:
<label for="{{key}}" class="check">
<input type="checkbox" id="{{key}}" name="{{key}}" value="yes"{{!' checked' if form[key] else ''}}{{!' aria-invalid="true" aria-describedby="%s-error"' % key if errors.get(key) else ''}}>
{{label}}
% if errors.get(key):
<small id="{{key}}-error" class="field-error">{{errors[key]}}</small>
% end
</label>
% elif key == 'recording':
<label for="recording">{{label}}
<select id="recording" name="recording"{{!' aria-invalid="true" aria-describedby="recording-error"' if errors.get('recording') else ''}}>
% for m in recording_modes:
<option value="{{m}}"{{!' selected' if form['recording'] == m else ''}}>{{m}}</option>
% end
</select>
% if errors.get('recording'):
<small id="recording-error" class="field-error">{{errors['recording']}}</small>
% else:
<small>{{hint}}</small>
% end
</label>
% else:
% include('field', name=key, label=label, value=form[key], error=errors.get(key), hint=hint)
% end
% end
</div>
% if legend == 'Waiting and overflow':
% include('ivr_dest', prefix='overflow', label='Overflow to', kinds=goto_route, goto=form['overflow-goto'], target=form['overflow-target'], none='(goodbye and hang up)')
% elif legend == 'Callback and exit':
% include('ivr_dest', prefix='exit', label='The exit key leads to', kinds=goto_route, goto=form['exit-goto'], target=form['exit-target'], none='(no exit)')
% end
</fieldset>
% end
<div class="buttons">
<button type="submit" name="action" value="save" id="save-queue">Save queue</button>
<button type="submit" name="action" value="more" class="secondary">More agent rows</button>
</div>
</form>
