% rebase('layout', title='IVR')
<link rel="stylesheet" href="{{css}}">
<h1>IVR</h1>
% if errors.get('form'):
<p class="form-error" id="form-error">{{errors['form']}}</p>
% end
<section id="menus">
<h2>Menus</h2>
% if errors.get('menus'):
<p class="form-error" id="menus-error">{{errors['menus']}}</p>
% end
<div class="scroll">
<table id="menu-list">
<thead><tr><th>Menu</th><th class="opt">Greeting</th><th>Options</th><th></th></tr></thead>
<tbody>
% for m in menus:
<tr id="menu-{{m['id']}}"><td><a href="/ivr/menus/{{m['id']}}">{{m['id']}}</a>{{' · ' + m['name'] if m.get('name') else ''}}</td>
<td class="opt">{{', '.join(x if isinstance(x, str) else ('“%s”' % x['say'] if 'say' in x else x.get('file', '?')) for x in m.get('greeting') or []) or '—'}}</td>
<td>{{'; '.join('%s → %s' % (k, describe(d)) for k, d in (m.get('options') or {}).items()) or '—'}}{{' · dial by extension' if m.get('dial_by_extension') else ''}}</td>
<td class="actions"><a href="/ivr/menus/{{m['id']}}" role="button" class="secondary small">Edit</a>
<form method="post" action="/ivr/menus/{{m['id']}}/remove" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger small">Remove</button></form></td></tr>
% end
% if not menus:
<tr><td colspan="4">No menus yet.</td></tr>
% end
</tbody>
</table>
</div>
<p><a href="/ivr/menus/new" role="button" id="new-menu">New menu</a></p>
</section>

<section id="conditions">
<h2>Time conditions</h2>
<p class="muted">Office hours and holidays send callers one way by day and another by night.</p>
% if errors.get('conditions'):
<p class="form-error" id="conditions-error">{{errors['conditions']}}</p>
% end
<div class="scroll">
<table id="condition-list">
<thead><tr><th>Condition</th><th class="opt">Hours</th><th>Day → / night →</th><th></th></tr></thead>
<tbody>
% for c in conditions:
<tr id="condition-{{c['id']}}"><td><a href="/ivr/conditions/{{c['id']}}">{{c['id']}}</a> <small class="muted">{{c.get('timezone', 'UTC')}}</small></td>
<td class="opt">{{'; '.join('%s %s–%s' % (h.get('days'), h.get('from'), h.get('to')) for h in c.get('hours') or []) or 'never open'}}{{' · %d holiday(s)' % len(c['holidays']) if c.get('holidays') else ''}}</td>
<td>{{describe(c.get('day'))}} / {{describe(c.get('night'))}}</td>
<td class="actions"><a href="/ivr/conditions/{{c['id']}}" role="button" class="secondary small">Edit</a>
<form method="post" action="/ivr/conditions/{{c['id']}}/remove" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger small">Remove</button></form></td></tr>
% end
% if not conditions:
<tr><td colspan="4">No time conditions.</td></tr>
% end
</tbody>
</table>
</div>
<p><a href="/ivr/conditions/new" role="button" class="secondary" id="new-condition">New time condition</a></p>
</section>

<section id="numbers">
<h2>Numbers that enter the IVR</h2>
% if errors.get('numbers'):
<p class="form-error" id="numbers-error">{{errors['numbers']}}</p>
% end
<div class="scroll">
<table id="number-list">
<thead><tr><th>Number</th><th>Enters</th><th></th></tr></thead>
<tbody>
% for n, t in numbers:
<tr id="number-{{n}}"><td>{{n}}</td><td>{{t}}</td>
<td class="actions"><form method="post" action="/ivr/numbers/{{n}}/remove" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger small">Remove</button></form></td></tr>
% end
% if not numbers:
<tr><td colspan="3">No number enters the IVR yet.</td></tr>
% end
</tbody>
</table>
</div>
<form method="post" action="/ivr/numbers" novalidate class="add" id="add-number">
<input type="hidden" name="csrf" value="{{csrf}}">
<fieldset class="row">
% include('field', name='ivr-number', label='Number', value=form.get('ivr-number', ''), error=errors.get('ivr-number'), attrs='inputmode="numeric" placeholder="500"')
<label for="ivr-entry">Enters
<select id="ivr-entry" name="ivr-entry"{{!' aria-invalid="true" aria-describedby="ivr-entry-error"' if errors.get('ivr-entry') else ''}}>
% for m in menus:
<option value="{{m['id']}}"{{!' selected' if form.get('ivr-entry') == m['id'] else ''}}>menu {{m['id']}}</option>
% end
% for c in conditions:
<option value="{{c['id']}}"{{!' selected' if form.get('ivr-entry') == c['id'] else ''}}>time condition {{c['id']}}</option>
% end
</select>
% if errors.get('ivr-entry'):
<small id="ivr-entry-error" class="field-error">{{errors['ivr-entry']}}</small>
% end
</label>
</fieldset>
<button type="submit">Add number</button>
</form>
</section>
