% rebase('layout', title='Time condition ' + (form['id'] or 'new'))
<link rel="stylesheet" href="{{css}}">
<p><a href="/ivr">← IVR</a></p>
<h1>{{'New time condition' if is_new else 'Time condition ' + ident}}</h1>
% if entries:
<p class="muted">Callers enter it on {{', '.join(entries)}}.</p>
% end
% if get('failed'):
<p class="form-error failed" id="failed" role="alert">{{failed}}</p>
% end
% if errors.get('form'):
<p class="form-error" id="form-error">{{errors['form']}}</p>
% end
<form method="post" action="/ivr/conditions/{{ident}}" novalidate id="condition-form" class="config">
<input type="hidden" name="csrf" value="{{csrf}}">
% include('ivr_targets', targets=targets)
<fieldset class="row">
% include('field', name='id', label='Condition id', value=form['id'], error=errors.get('id'), attrs='placeholder="office" autocapitalize="off"')
% include('field', name='name', label='Name (for you)', value=form['name'], error=errors.get('name'))
% include('field', name='timezone', label='Time zone', value=form['timezone'], error=errors.get('timezone'), attrs='placeholder="Europe/Berlin" autocapitalize="off"')
</fieldset>
<fieldset id="hours">
<legend><strong>Office hours</strong></legend>
<p class="muted">Days as <code>mon-fri</code>, <code>sat</code>, <code>mon,wed</code> or <code>daily</code>; times HH:MM (24:00 ends the day; a range may run past midnight).</p>
% if errors.get('hours'):
<small id="hours-error" class="field-error">{{errors['hours']}}</small>
% end
<div class="scroll">
<table id="hours-table">
<thead><tr><th>Days</th><th>From</th><th>To</th></tr></thead>
<tbody>
% for i, row in enumerate(form['hours']):
<tr id="hours-{{i}}">
% for j, f in enumerate(('days', 'from', 'to')):
% fid = 'hours-%d-%s' % (i, f)
<td><input name="{{fid}}" id="{{fid}}" value="{{row[j]}}" aria-label="{{f}} of hours row {{i + 1}}"{{!' aria-invalid="true" aria-describedby="%s-error"' % fid if errors.get(fid) else ''}}>
% if errors.get(fid):
<small id="{{fid}}-error" class="field-error">{{errors[fid]}}</small>
% end
</td>
% end
</tr>
% end
</tbody>
</table>
</div>
<input type="hidden" name="hours-rows" value="{{len(form['hours'])}}">
</fieldset>
<fieldset id="holidays">
<legend><strong>Holidays</strong> (closed all day; they override the hours)</legend>
<p class="muted">A date every year <code>12-25</code>, once <code>2026-04-03</code>, or a range with <em>to</em>.</p>
<div class="scroll">
<table id="holiday-table">
<thead><tr><th>Date / from</th><th>To</th><th>Name</th></tr></thead>
<tbody>
% for i, row in enumerate(form['holidays']):
<tr id="hol-{{i}}">
% for j, f in enumerate(('from', 'to', 'name')):
% fid = 'hol-%d-%s' % (i, f)
<td><input name="{{fid}}" id="{{fid}}" value="{{row[j]}}" aria-label="{{f}} of holiday {{i + 1}}"{{!' aria-invalid="true" aria-describedby="%s-error"' % fid if errors.get(fid) else ''}}>
% if errors.get(fid):
<small id="{{fid}}-error" class="field-error">{{errors[fid]}}</small>
% end
</td>
% end
</tr>
% end
</tbody>
</table>
</div>
<input type="hidden" name="hol-rows" value="{{len(form['holidays'])}}">
</fieldset>
<div class="grid">
% include('ivr_dest', prefix='day', label='During office hours', kinds=goto_route, goto=form['day-goto'], target=form['day-target'])
% include('ivr_dest', prefix='night', label='Outside them and on holidays', kinds=goto_route, goto=form['night-goto'], target=form['night-target'])
</div>
<div class="buttons">
<button type="submit" name="action" value="save" id="save-condition">Save time condition</button>
<button type="submit" name="action" value="more" class="secondary">More rows</button>
</div>
</form>
