% rebase('layout', title='Recording')
<link rel="stylesheet" href="{{css}}">
<h1>Recording policy</h1>
<p><strong>always</strong>: recorded from answer to hang-up · <strong>on-demand</strong>: recorded while a party asks by feature code · <strong>never</strong>: not recorded, not even on demand (it wins when parties disagree). Without an entry the setting <code>recording.calls</code> decides (now: {{default or '?'}}).</p>
% if get('failed'):
<p class="form-error failed" id="failed" role="alert">{{failed}}</p>
% end
% if errors.get('form'):
<p class="form-error" id="form-error">{{errors['form']}}</p>
% end
<form method="post" action="/recording" novalidate id="recording-form" class="config policy">
<input type="hidden" name="csrf" value="{{csrf}}">
% for title, rows, prefix, tid in (('Extensions', extensions, 'ext', 'rec-extensions'), ('Numbers calls come in on', numbers, 'num', 'rec-numbers')):
<h2>{{title}}</h2>
<div class="scroll">
<table id="{{tid}}">
<thead><tr><th>Number</th><th>What</th><th>Recording</th></tr></thead>
<tbody>
% for r in rows:
% fid = '%s-%s' % (prefix, r['number'])
<tr id="row-{{fid}}"><td>{{r['number']}}</td><td>{{r['name']}}</td>
<td><select id="{{fid}}" name="{{fid}}" aria-label="recording of {{r['number']}}"{{!' aria-invalid="true" aria-describedby="%s-error"' % fid if errors.get(fid) else ''}}>
<option value="">default</option>
% for m in modes:
<option value="{{m}}"{{!' selected' if r['mode'] == m else ''}}>{{m}}</option>
% end
</select>
% if errors.get(fid):
<small id="{{fid}}-error" class="field-error">{{errors[fid]}}</small>
% end
</td></tr>
% end
% if not rows:
<tr><td colspan="3">None yet.</td></tr>
% end
</tbody>
</table>
</div>
% end
<button type="submit" id="save-recording">Save recording policy</button>
</form>
