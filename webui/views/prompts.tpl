% rebase('layout', title='Prompts')
<link rel="stylesheet" href="{{css}}">
<h1>Prompts</h1>
<p>Your own recordings for IVR menus: any WAV, FLAC or OGG file, converted to telephone quality (8 kHz mono) when uploaded.</p>
% if errors.get('remove'):
<p class="form-error" id="remove-error">{{errors['remove']}}</p>
% end
<form method="post" action="/prompts" enctype="multipart/form-data" novalidate class="add" id="upload-form">
<input type="hidden" name="csrf" value="{{csrf}}">
<fieldset class="row">
<label for="file">Sound file
<input type="file" id="file" name="file" accept="audio/*,.wav,.flac,.ogg"{{!' aria-invalid="true" aria-describedby="file-error"' if errors.get('file') else ''}}>
% if errors.get('file'):
<small id="file-error" class="field-error">{{errors['file']}}</small>
% end
</label>
% include('field', name='name', label='Store it as', value=form.get('name', ''), error=errors.get('name'), hint='lower-case letters, digits, - and _, ending in .wav; default: from the file name', attrs='placeholder="welcome.wav" autocapitalize="off"')
</fieldset>
<button type="submit">Upload</button>
</form>
<div class="scroll">
<table id="uploads">
<thead><tr><th>File</th><th>Length</th><th>Listen</th><th class="opt">Played by</th><th></th></tr></thead>
<tbody>
% for u in uploads:
<tr id="upload-{{u.name.replace('.', '-')}}"><td>{{u.name}}</td><td>{{'%.1f s' % u.seconds}}</td>
<td><audio controls preload="none" src="/prompts/play/upload/{{u.name}}" class="preview"></audio></td>
<td class="opt">{{', '.join(used.get(u.name, [])) or '—'}}</td>
<td class="actions"><form method="post" action="/prompts/{{u.name}}/remove" class="inline"><input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger small">Remove</button></form></td></tr>
% end
% if not uploads:
<tr><td colspan="5">No uploads yet.</td></tr>
% end
</tbody>
</table>
</div>
<details id="sound-set">
<summary>The sound set: {{len(phrases)}} prompts menus can name</summary>
<div class="scroll">
<table>
<thead><tr><th>Name</th><th>Listen</th></tr></thead>
<tbody>
% for p in phrases:
<tr><td><code>{{p}}</code></td><td><audio controls preload="none" src="/prompts/play/set/{{p}}" class="preview"></audio></td></tr>
% end
</tbody>
</table>
</div>
</details>
