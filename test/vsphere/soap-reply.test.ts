import { child, children, parseSoapReply, parseXml, textAt } from '../../vsphere/soap-reply';
import { envelope, moRefEl, xmlEscape } from '../../vsphere/soap-envelope';
import { req } from '../../vsphere/vim-requests';
import { objectContentOf, toPlain } from '../../vsphere/vim-types';
import { devicesOf, flatFileNameOf, parseDatastorePath, vmHardwareFrom } from '../../vsphere/vm-hardware';

const ENV = (body: string) =>
  '<?xml version="1.0" encoding="UTF-8"?>' +
  '<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"' +
  ' xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">' +
  `<soapenv:Body>${body}</soapenv:Body></soapenv:Envelope>`;

// As vcsim (govmomi v0.56) writes it: the XSI prefix is "_XMLSchema-instance", declared on each <val>.
const VCSIM_DEVICE_VAL =
  '<val xmlns:_XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" _XMLSchema-instance:type="ArrayOfVirtualDevice">' +
  '<VirtualDevice _XMLSchema-instance:type="VirtualDisk"><key>2000</key><deviceInfo _XMLSchema-instance:type="Description"><label>Hard disk 1</label><summary>x</summary></deviceInfo>' +
  '<backing _XMLSchema-instance:type="VirtualDiskFlatVer2BackingInfo"><fileName>[LocalDS_0] a b/a b.vmdk</fileName><datastore type="Datastore">datastore-59</datastore>' +
  '<thinProvisioned>true</thinProvisioned><changeId>52 2d 7b 8f ac 61 51 cc-77 4c 7b ec 91 50 bb 7b/0123</changeId></backing>' +
  '<controllerKey>1000</controllerKey><unitNumber>0</unitNumber><capacityInKB>1048576</capacityInKB><capacityInBytes>1073741824</capacityInBytes></VirtualDevice>' +
  '</val>';

describe('soap-reply parsing', () => {
  test('resolves xsi:type through any prefix bound to the XMLSchema-instance namespace', () => {
    const reply = parseSoapReply(
      ENV(`<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="VirtualMachine">vm-1</obj>` +
        `<propSet><name>config.hardware.device</name>${VCSIM_DEVICE_VAL}</propSet>` +
        `<propSet><name>parent</name><val xmlns:_XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" type="Folder" _XMLSchema-instance:type="ManagedObjectReference">group-2</val></propSet>` +
        `</objects></returnval></RetrievePropertiesExResponse>`),
    );
    const objects = children(child(reply.body, 'returnval'), 'objects');
    const content = objectContentOf(objects[0]);
    const val = content.props.get('config.hardware.device')!;
    expect(val.xsiType).toBe('ArrayOfVirtualDevice');
    const [disk] = devicesOf(content.props);
    expect(disk.xsiType).toBe('VirtualDisk'); // prefix declared on an ancestor
    expect(child(disk, 'backing')!.xsiType).toBe('VirtualDiskFlatVer2BackingInfo');
    // the MoRef keeps its own "type" attribute distinct from the xsi type
    const parent = content.props.get('parent')!;
    expect(parent.attrs.type).toBe('Folder');
    expect(parent.xsiType).toBe('ManagedObjectReference');
    expect(toPlain(parent)).toEqual({ type: 'Folder', value: 'group-2' });
  });

  test('a "type" attribute under a prefix NOT bound to XSI is not taken as the xsi type', () => {
    const node = parseXml('<a xmlns:x="urn:other" x:type="Nope" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><b i:type="xsd:string">v</b></a>');
    expect(node.xsiType).toBeUndefined();
    expect(child(node, 'b')!.xsiType).toBe('string');
  });

  test('the usual xsi: prefix of a real vCenter works too', () => {
    const node = parseXml('<val xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="VirtualMachinePowerState">poweredOff</val>');
    expect(node.xsiType).toBe('VirtualMachinePowerState');
    expect(node.text).toBe('poweredOff');
  });

  test('single-element lists are arrays, values stay strings', () => {
    const reply = parseSoapReply(
      ENV(`<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="VirtualMachine">vm-7</obj>` +
        `<propSet><name>config.hardware.numCPU</name><val xsi:type="xsd:int">0002</val></propSet></objects></returnval></RetrievePropertiesExResponse>`),
    );
    const returnval = child(reply.body, 'returnval')!;
    expect(children(returnval, 'objects')).toHaveLength(1);
    const content = objectContentOf(children(returnval, 'objects')[0]);
    expect(content.obj).toEqual({ type: 'VirtualMachine', value: 'vm-7' });
    expect(content.props.get('config.hardware.numCPU')!.text).toBe('0002'); // no number coercion
    expect(devicesOf(new Map([['config.hardware.device', parseXml(VCSIM_DEVICE_VAL)]]))).toHaveLength(1);
  });

  test('disk mapping keeps changeId strings and derives the flat file name', () => {
    const props = new Map([
      ['name', parseXml('<val>x</val>')],
      ['config.guestId', parseXml('<val>otherGuest</val>')],
      ['config.hardware.numCPU', parseXml('<val>1</val>')],
      ['config.hardware.memoryMB', parseXml('<val>32</val>')],
      ['runtime.powerState', parseXml('<val>poweredOn</val>')],
      ['config.hardware.device', parseXml(VCSIM_DEVICE_VAL)],
    ]);
    const hw = vmHardwareFrom({ type: 'VirtualMachine', value: 'vm-1' }, props, { name: 'DC0', path: 'DC0' });
    expect(hw.disks).toEqual([
      {
        key: 2000,
        label: 'Hard disk 1',
        capacityBytes: 1073741824,
        datastore: 'LocalDS_0',
        fileName: '[LocalDS_0] a b/a b.vmdk',
        flatFileName: '[LocalDS_0] a b/a b-flat.vmdk',
        thinProvisioned: true,
        controllerKey: 1000,
        unitNumber: 0,
        changeId: '52 2d 7b 8f ac 61 51 cc-77 4c 7b ec 91 50 bb 7b/0123',
        backingType: 'VirtualDiskFlatVer2BackingInfo',
      },
    ]);
    expect(hw.firmware).toBe('bios');
    expect(hw.changeTrackingEnabled).toBe(false);
    expect(flatFileNameOf('[ds] v/v-flat.vmdk')).toBe('[ds] v/v-flat.vmdk');
    expect(parseDatastorePath('[my ds] dir/f.vmdk')).toEqual({ datastore: 'my ds', path: 'dir/f.vmdk' });
  });

  test('faults: type from the detail xsi type, message from faultstring', () => {
    const reply = parseSoapReply(
      ENV('<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Login failure</faultstring>' +
        '<detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault></detail></soapenv:Fault>'),
    );
    expect(reply.body).toBeUndefined();
    expect(reply.fault).toMatchObject({ faultCode: 'ServerFaultCode', faultString: 'Login failure', faultType: 'InvalidLogin' });
    // Without an xsi type, the element name (minus "Fault") names the fault.
    const bare = parseSoapReply(ENV('<soapenv:Fault><faultcode>x</faultcode><faultstring>y</faultstring><detail><NotAuthenticatedFault xmlns="urn:vim25"/></detail></soapenv:Fault>'));
    expect(bare.fault!.faultType).toBe('NotAuthenticated');
  });

  test('entities are decoded and text is preserved', () => {
    const node = parseXml('<a><b>&lt;x&gt; &amp; "q"</b><c/></a>');
    expect(textAt(node, 'b')).toBe('<x> & "q"');
    expect(textAt(node, 'c')).toBe('');
  });

  test('rejects what is not a SOAP envelope', () => {
    expect(() => parseSoapReply('<html><body>502 Bad Gateway</body></html>')).toThrow(/not a SOAP envelope/);
    expect(() => parseSoapReply('not xml at all <')).toThrow();
  });
});

describe('soap-envelope building', () => {
  test('escapes text and attributes, drops characters XML cannot carry', () => {
    expect(xmlEscape(`a<b>&"'\u0001c`)).toBe('a&lt;b&gt;&amp;&quot;&apos;c');
    expect(moRefEl('_this', { type: 'A"B', value: '<v>' })).toBe('<_this type="A&quot;B">&lt;v&gt;</_this>');
  });

  test('a built request parses back (round trip), password escaped', () => {
    const xml = envelope('Login', req.login({ type: 'SessionManager', value: 'SessionManager' }, 'u', 'p<&>"ss'));
    const env = parseXml(xml);
    const login = child(child(env, 'Body'), 'Login')!;
    expect(textAt(login, 'password')).toBe('p<&>"ss');
    expect(child(login, '_this')!.attrs.type).toBe('SessionManager');
  });

  test('TraversalSpec carries an xsi:type and XSD element order', () => {
    const body = req.retrievePropertiesEx({ type: 'PropertyCollector', value: 'pc' }, [
      {
        propSet: [{ type: 'VirtualMachine', pathSet: ['name'] }],
        objectSet: [{ obj: { type: 'ContainerView', value: 'cv-1' }, skip: true, selectSet: [{ name: 't', type: 'ContainerView', path: 'view' }] }],
      },
    ], 10);
    expect(body).toContain('<objectSet><obj type="ContainerView">cv-1</obj><skip>true</skip><selectSet xsi:type="TraversalSpec"><name>t</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet>');
    expect(body).toContain('<options><maxObjects>10</maxObjects></options>');
    expect(body.indexOf('<propSet>')).toBeLessThan(body.indexOf('<objectSet>'));
  });
});
