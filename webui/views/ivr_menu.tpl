% rebase('layout', title='IVR menu ' + (form['id'] or 'new'))
<link rel="stylesheet" href="{{css}}">
<p><a href="/ivr">← IVR</a></p>
<h1>{{'New menu' if is_new else 'Menu ' + ident}}</h1>
% if entries:
<p class="muted">Callers enter it on {{', '.join(entries)}}.</p>
% end
% if get('failed'):
<p class="form-error failed" id="failed" role="alert">{{failed}}</p>
% end
% if errors.get('form'):
<p class="form-error" id="form-error">{{errors['form']}}</p>
% end
<form method="post" action="/ivr/menus/{{ident}}" enctype="multipart/form-data" novalidate id="menu-form" class="config">
<input type="hidden" name="csrf" value="{{csrf}}">
% include('ivr_targets', targets=targets)
<datalist id="prompt-names">
% for u in uploads:
<option value="{{u}}">uploaded</option>
% end
% for p in phrases:
<option value="{{p}}"></option>
% end
</datalist>
<fieldset class="row">
% include('field', name='id', label='Menu id', value=form['id'], error=errors.get('id'), attrs='placeholder="main" autocapitalize="off"')
% include('field', name='name', label='Name (for you)', value=form['name'], error=errors.get('name'), attrs='placeholder="Main menu"')
</fieldset>

<fieldset id="greeting">
<legend><strong>Greeting</strong></legend>
<p class="muted">Played in order: prompts of the sound set by name, text to speak (rendered when you save) or an uploaded file.</p>
% include('ivr_prompts', prefix='greeting', rows=form['greeting'])
<div class="row upload">
<label for="greeting-upload">Upload a greeting (WAV, FLAC, OGG) — added at the end
<input type="file" id="greeting-upload" name="greeting-upload" accept="audio/*,.wav,.flac,.ogg"{{!' aria-invalid="true" aria-describedby="greeting-upload-error"' if errors.get('greeting-upload') else ''}}>
% if errors.get('greeting-upload'):
<small id="greeting-upload-error" class="field-error">{{errors['greeting-upload']}}</small>
% end
</label>
<label for="greeting-upload-name">Store it as
<input id="greeting-upload-name" name="greeting-upload-name" placeholder="from the file name, e.g. welcome.wav" autocapitalize="off">
</label>
</div>
</fieldset>

<fieldset id="options">
<legend><strong>Options</strong></legend>
% if errors.get('options'):
<small id="options-error" class="field-error">{{errors['options']}}</small>
% end
<div class="scroll">
<table class="option-rows" id="option-table">
<thead><tr><th>Key</th><th>Go to</th><th>Target</th><th class="opt" title="the key may also begin an extension number (dial by extension)">Ext. prefix</th></tr></thead>
<tbody>
% for i, (key, goto, target, prefix) in enumerate(form['options']):
% fid = 'opt-%d' % i
<tr id="{{fid}}">
<td class="key">
<input name="{{fid}}-key" id="{{fid}}-key" value="{{key}}" maxlength="1" aria-label="key of option {{i + 1}}" inputmode="tel"{{!' aria-invalid="true" aria-describedby="%s-key-error"' % fid if errors.get(fid + '-key') else ''}}>
% if errors.get(fid + '-key'):
<small id="{{fid}}-key-error" class="field-error">{{errors[fid + '-key']}}</small>
% end
</td>
<td><select name="{{fid}}-goto" id="{{fid}}-goto" aria-label="destination of option {{i + 1}}"{{!' aria-invalid="true" aria-describedby="%s-goto-error"' % fid if errors.get(fid + '-goto') else ''}}>
<option value=""></option>
% for k in goto_menu:
<option value="{{k}}"{{!' selected' if goto == k else ''}}>{{k}}</option>
% end
</select>
% if errors.get(fid + '-goto'):
<small id="{{fid}}-goto-error" class="field-error">{{errors[fid + '-goto']}}</small>
% end
</td>
<td><input name="{{fid}}-target" id="{{fid}}-target" value="{{target}}" list="targets" aria-label="target of option {{i + 1}}"{{!' aria-invalid="true" aria-describedby="%s-target-error"' % fid if errors.get(fid + '-target') else ''}}>
% if errors.get(fid + '-target'):
<small id="{{fid}}-target-error" class="field-error">{{errors[fid + '-target']}}</small>
% end
</td>
<td class="opt"><input type="checkbox" name="{{fid}}-prefix" id="{{fid}}-prefix" value="yes"{{!' checked' if prefix else ''}} aria-label="option {{i + 1}} may begin an extension">
% if errors.get(fid + '-prefix'):
<small id="{{fid}}-prefix-error" class="field-error">{{errors[fid + '-prefix']}}</small>
% end
</td>
</tr>
% end
</tbody>
</table>
</div>
<input type="hidden" name="opt-rows" value="{{len(form['options'])}}">
<label for="dial_by_extension" class="check">
<input type="checkbox" id="dial_by_extension" name="dial_by_extension" value="yes"{{!' checked' if form['dial_by_extension'] else ''}}{{!' aria-invalid="true" aria-describedby="dial_by_extension-error"' if errors.get('dial_by_extension') else ''}}>
Callers may dial an extension number directly
% if errors.get('dial_by_extension'):
<small id="dial_by_extension-error" class="field-error">{{errors['dial_by_extension']}}</small>
% end
</label>
</fieldset>

<fieldset id="timing">
<legend><strong>When the caller presses nothing or a wrong key</strong></legend>
<fieldset class="row">
% include('field', name='timeout', label='Wait for a key (s)', value=form['timeout'], error=errors.get('timeout'), attrs='inputmode="decimal" placeholder="5"')
% include('field', name='retries', label='Retries', value=form['retries'], error=errors.get('retries'), attrs='inputmode="numeric" placeholder="3"')
% include('field', name='inter_digit_timeout', label='Between digits (s)', value=form['inter_digit_timeout'], error=errors.get('inter_digit_timeout'), attrs='inputmode="decimal" placeholder="2.5"')
</fieldset>
<div class="grid">
% include('ivr_dest', prefix='on_timeout', label='No key pressed', kinds=goto_route, goto=form['on_timeout-goto'], target=form['on_timeout-target'], none='(as the fallback)')
% include('ivr_dest', prefix='fallback', label='Fallback (retries used up)', kinds=goto_route, goto=form['fallback-goto'], target=form['fallback-target'], none='(hang up)')
</div>
<p class="muted">Played after a wrong key:</p>
% include('ivr_prompts', prefix='invalid', rows=form['invalid'])
</fieldset>
<div class="buttons">
<button type="submit" name="action" value="save" id="save-menu">Save menu</button>
<button type="submit" name="action" value="more" class="secondary" id="more-rows">More rows</button>
</div>
</form>
