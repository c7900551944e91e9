% # Rows of prompt items (greeting or invalid): kind + value, each with a preview player.
<div class="scroll">
<table class="prompt-rows" id="{{prefix}}-table">
<thead><tr><th>Kind</th><th>Prompt name, text or file</th><th>Listen</th></tr></thead>
<tbody>
% for i, (kind, value) in enumerate(rows):
% fid = '%s-%d' % (prefix, i)
% err = errors.get(fid + '-value')
<tr id="{{fid}}">
<td><select name="{{fid}}-kind" id="{{fid}}-kind" aria-label="kind of prompt {{i + 1}}">
% for k, label in prompt_kinds:
<option value="{{k}}"{{!' selected' if kind == k else ''}}>{{label}}</option>
% end
</select></td>
<td><input name="{{fid}}-value" id="{{fid}}-value" value="{{value}}" list="prompt-names" aria-label="prompt {{i + 1}}"{{!' aria-invalid="true" aria-describedby="%s-value-error"' % fid if err else ''}}>
% if err:
<small id="{{fid}}-value-error" class="field-error">{{err}}</small>
% end
</td>
<td>
% url = preview(kind, value)
% if url:
<audio controls preload="none" src="{{url}}" class="preview"></audio>
% end
</td></tr>
% end
</tbody>
</table>
</div>
<input type="hidden" name="{{prefix}}-rows" value="{{len(rows)}}">
