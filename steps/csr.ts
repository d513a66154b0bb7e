// Checks that a CertificateSigningRequest is exactly what a kubelet sends when it bootstraps
// under a given node name, before the tool approves it.
import type { V1CertificateSigningRequest } from '@kubernetes/client-node';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Extensions, id_ce_subjectAltName } from '@peculiar/asn1-x509';

export const KUBELET_CLIENT_SIGNER = 'kubernetes.io/kube-apiserver-client-kubelet';
const OID_COMMON_NAME = '2.5.4.3';
const OID_ORGANIZATION = '2.5.4.10';
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
/** Usages a kubelet client certificate may carry; `key encipherment` is sent for RSA keys. */
const ALLOWED_USAGES = new Set(['digital signature', 'key encipherment', 'client auth']);

export interface CsrSubject {
  commonName: string[];
  organization: string[];
  hasSubjectAltNames: boolean;
}

/** Decodes the PKCS#10 request of a CSR object (base64 of a PEM block, as the API returns it). */
export function decodeCsrRequest(request: string): CsrSubject {
  const pem = Buffer.from(request, 'base64').toString('utf8');
  const body = pem.match(/-----BEGIN CERTIFICATE REQUEST-----([\s\S]+?)-----END CERTIFICATE REQUEST-----/);
  if (!body) throw new Error('the request is not a PEM CERTIFICATE REQUEST block');
  const der = Buffer.from(body[1]!.replace(/\s+/g, ''), 'base64');
  const parsed = AsnConvert.parse(der, CertificationRequest);
  const info = parsed.certificationRequestInfo;
  const commonName: string[] = [];
  const organization: string[] = [];
  for (const rdn of info.subject) {
    for (const attribute of rdn) {
      if (attribute.type === OID_COMMON_NAME) commonName.push(attribute.value.toString());
      if (attribute.type === OID_ORGANIZATION) organization.push(attribute.value.toString());
    }
  }
  let hasSubjectAltNames = false;
  for (const attribute of info.attributes ?? []) {
    if (attribute.type !== OID_EXTENSION_REQUEST) continue;
    for (const value of attribute.values) {
      const extensions = AsnConvert.parse(value, Extensions);
      if (extensions.some((e) => e.extnID === id_ce_subjectAltName)) hasSubjectAltNames = true;
    }
  }
  return { commonName, organization, hasSubjectAltNames };
}

export function isApproved(csr: V1CertificateSigningRequest): boolean {
  return csr.status?.conditions?.some((c) => c.type === 'Approved' && c.status === 'True') ?? false;
}

export function deniedOrFailed(csr: V1CertificateSigningRequest): string | undefined {
  const condition = csr.status?.conditions?.find((c) => (c.type === 'Denied' || c.type === 'Failed') && c.status === 'True');
  return condition ? `${condition.type}${condition.reason ? ` (${condition.reason})` : ''}${condition.message ? `: ${condition.message}` : ''}` : undefined;
}

/** Returns true when the CSR requests a kubelet client certificate for this node name. */
export function isForNode(csr: V1CertificateSigningRequest, nodeName: string): boolean {
  if (csr.spec.signerName !== KUBELET_CLIENT_SIGNER) return false;
  try {
    return decodeCsrRequest(csr.spec.request).commonName.includes(`system:node:${nodeName}`);
  } catch {
    return false;
  }
}

/**
 * Lists why a CSR is not what a kubelet bootstrapping as `nodeName` sends; empty when it is.
 * A bootstrapping kubelet authenticates with a bootstrap token (user `system:bootstrap:<id>`,
 * group `system:bootstrappers`); a renewal comes from the node itself. With `expectedRequester`,
 * only that user is accepted.
 */
export function kubeletCsrProblems(csr: V1CertificateSigningRequest, nodeName: string, expectedRequester?: string): string[] {
  const problems: string[] = [];
  if (csr.spec.signerName !== KUBELET_CLIENT_SIGNER) {
    problems.push(`signer is ${csr.spec.signerName}, expected ${KUBELET_CLIENT_SIGNER}`);
  }
  let subject: CsrSubject | undefined;
  try {
    subject = decodeCsrRequest(csr.spec.request);
  } catch (error) {
    problems.push(`request cannot be decoded: ${(error as Error).message}`);
  }
  if (subject) {
    const expectedName = `system:node:${nodeName}`;
    if (subject.commonName.length !== 1 || subject.commonName[0] !== expectedName) {
      problems.push(`subject CN is ${JSON.stringify(subject.commonName)}, expected ["${expectedName}"]`);
    }
    if (subject.organization.length !== 1 || subject.organization[0] !== 'system:nodes') {
      problems.push(`subject O is ${JSON.stringify(subject.organization)}, expected ["system:nodes"]`);
    }
    if (subject.hasSubjectAltNames) problems.push('request carries subject alternative names; a kubelet client request has none');
  }
  const usages = csr.spec.usages ?? [];
  if (!usages.includes('client auth')) problems.push('usages lack "client auth"');
  const extra = usages.filter((u) => !ALLOWED_USAGES.has(u));
  if (extra.length > 0) problems.push(`usages include ${extra.join(', ')}, which a kubelet client certificate does not need`);
  const user = csr.spec.username ?? '';
  const groups = csr.spec.groups ?? [];
  const bootstrapping = user.startsWith('system:bootstrap:') && groups.includes('system:bootstrappers');
  const renewing = user === `system:node:${nodeName}` && groups.includes('system:nodes');
  if (expectedRequester !== undefined && user !== expectedRequester) {
    problems.push(`requested by ${user || '(no user)'}, expected ${expectedRequester}, the bootstrap token this rename created`);
  } else if (!bootstrapping && !renewing) {
    problems.push(`requested by ${user || '(no user)'}, expected a bootstrap token user (system:bootstrap:<id>) or system:node:${nodeName}`);
  }
  return problems;
}
