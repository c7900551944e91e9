<fieldset id="encrypt">
<legend>Encrypt it (recommended)</legend>
% include('field', name='passphrase', label='Passphrase', type='password', error=errors.get('passphrase'), attrs='autocomplete="new-password"', hint='At least 10 characters. Leave both empty for an archive anyone holding it can read.')
% include('field', name='passphrase2', label='Passphrase again', type='password', error=errors.get('passphrase2'), attrs='autocomplete="new-password"')
<small>Keep the passphrase apart from the file: the restore asks for it, and without it nobody can open the backup, not even the box.</small>
</fieldset>
